"""Replay and backfill: a provider's booking history, re-delivered as its webhooks.

``calflow replay`` reads an integration's full history page by page and POSTs each
object to a webhook URL in the provider's own delivery format and signature scheme
(or publishes it into calflow's event bus), with deterministic ids, bounded
concurrency, a client-side rate limit, retries, and a resumable checkpoint.

The names below are imported when first used (:mod:`calflow.lazy_exports`): a command
that needs only :mod:`calflow.replay.timespec` does not load the engine.
"""

from typing import TYPE_CHECKING

from calflow.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from calflow.replay.engine import ReplayEngine, resume_replay, run_replay
    from calflow.replay.jobs import Job, JobStore
    from calflow.replay.model import Outcome, ReplayItem, ReplayOptions, ReplaySummary
    from calflow.replay.pipeline import Progress
    from calflow.replay.targets import Delivery, Intake

_WHERE = {
    **dict.fromkeys(("ReplayEngine", "resume_replay", "run_replay"), "calflow.replay.engine"),
    **dict.fromkeys(("Job", "JobStore"), "calflow.replay.jobs"),
    **dict.fromkeys(("Outcome", "ReplayItem", "ReplayOptions", "ReplaySummary"),
                    "calflow.replay.model"),
    "Progress": "calflow.replay.pipeline",
    **dict.fromkeys(("Delivery", "Intake"), "calflow.replay.targets"),
}  # fmt: skip
__getattr__ = lazy_exports(__name__, _WHERE)

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
