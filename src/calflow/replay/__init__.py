"""Replay and backfill: a provider's booking history, re-delivered as its webhooks.

``calflow replay`` reads an integration's full history page by page and POSTs each
object to a webhook URL in the provider's own delivery format and signature scheme
(or publishes it into calflow's event bus), with deterministic ids, bounded
concurrency, a client-side rate limit, retries, and a resumable checkpoint.
"""

from calflow.replay.engine import ReplayEngine, resume_replay, run_replay
from calflow.replay.jobs import Job, JobStore
from calflow.replay.model import Outcome, ReplayItem, ReplayOptions, ReplaySummary
from calflow.replay.pipeline import Progress
from calflow.replay.targets import Delivery, Intake

__all__ = [
    "Delivery",
    "Intake",
    "Job",
    "JobStore",
    "Outcome",
    "Progress",
    "ReplayEngine",
    "ReplayItem",
    "ReplayOptions",
    "ReplaySummary",
    "resume_replay",
    "run_replay",
]
