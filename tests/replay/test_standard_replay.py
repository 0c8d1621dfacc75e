"""Replay signed as Standard Webhooks (``--signature standard``), verified by a receiver
that runs ``standardwebhooks.Webhook.verify``; unknown schemes and bad secrets refused."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from calflow.errors import ValidationError
from calflow.integrations import IntegrationStore
from calflow.replay import ReplayEngine, ReplayOptions
from cli.conftest import run_calflow

from .std_receiver import std_receiver

STD = "whsec_" + base64.b64encode(b"replay-standard-webhooks-key-0001").decode()


@pytest.mark.parametrize(("integration", "own_header"), [
    ("cc", "x-cal-signature-256"), ("sc", "x-savvycal-signature"),
])  # fmt: skip
async def test_replay_signed_standard_verifies_with_the_library(
    engine: ReplayEngine, integration: str, own_header: str
) -> None:
    with std_receiver(STD) as rec:
        options = ReplayOptions(
            integration=integration, to=rec.url, secret=STD, signature="standard",
            allow_private=True, limit=12, concurrency=4,
        )  # fmt: skip
        summary = await engine.start(options)
    counts = summary.counts
    assert counts.failed == 0 and counts.sent + counts.skipped == 12, summary.to_dict()
    assert counts.sent >= 10 and rec.refused == [] and len(rec.verified) == counts.sent
    for headers in rec.verified:
        assert headers["webhook-id"] == headers["x-calflow-replay-id"]  # stable: dedupe on it
        assert own_header not in headers
    assert len({h["webhook-id"] for h in rec.verified}) == counts.sent
    job = engine.jobs.get(summary.job)
    assert job.options["signature"] == "standard"
    assert STD not in str(job.public(engine.jobs.totals(job.id)))


async def test_replay_signature_refusals(engine: ReplayEngine, store: IntegrationStore) -> None:
    base = {"integration": "cc", "to": "http://127.0.0.1:9/x", "allow_private": True}
    cases: list[tuple[ReplayOptions, str, str]] = [
        (ReplayOptions(**base, signature="plain", secret=STD), "signature", "provider, standard"),
        (ReplayOptions(**base, signature="standard", secret="whsec_not base64!"), "secret",
         "whsec_<base64>"),
        (ReplayOptions(**base, signature="standard"), "secret", "whsec_"),  # cc stores none
        (ReplayOptions(integration="cc", into="calflow", signature="standard", secret=STD),
         "signature", "--to"),
    ]  # fmt: skip
    for options, field, words in cases:
        with pytest.raises(ValidationError) as caught:
            await engine.start(options)
        problems = {e.path: e.message for e in caught.value.errors}
        assert field in problems and words in problems[field], (options, problems)
    assert engine.jobs.list() == []  # refused before a job was made


def test_cli_replay_signature_standard(home: Path, store: IntegrationStore) -> None:
    with std_receiver(STD) as rec:
        sent = run_calflow(
            home, "replay", "cal_com", "-i", "cc", "--to", rec.url, "--signature", "standard",
            "--secret", STD, "--allow-private", "--limit", "5", "--json",
        )  # fmt: skip
        plain = run_calflow(
            home, "replay", "-i", "cc", "--to", rec.url, "--signature", "plain",
            "--secret", STD, "--allow-private",
        )  # fmt: skip
    assert sent.code == 0, str(sent)
    assert sent.json["failed"] == 0 and sent.json["sent"] + sent.json["skipped"] == 5
    assert rec.refused == [] and len(rec.verified) == sent.json["sent"] > 0
    assert STD not in sent.stdout + sent.stderr
    assert plain.code == 2, str(plain)
    assert "signature" in plain.err and "provider, standard" in plain.err
