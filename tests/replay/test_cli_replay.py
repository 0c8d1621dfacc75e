"""``calflow replay`` and ``calflow replays`` as a user runs them: a real subprocess.

Includes the kill-and-resume test: the replay process is killed with SIGKILL halfway,
then ``--resume`` finishes the job without re-sending what was recorded as sent.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from calflow.integrations import IntegrationStore
from calflow.replay import JobStore
from cli.conftest import Result, calflow_command, run_calflow
from e2e.sandbox_process import SandboxProcess, child_env

from .conftest import SECRET, Receiver, all_savvycal_events

pytestmark = pytest.mark.slow


def replay_args(receiver: Receiver, *extra: str) -> list[str]:
    return ["replay", "--integration", "sc", "--to", receiver.url, "--secret", SECRET,
            "--allow-private", *extra]  # fmt: skip


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*calflow_command(), *args],
        env=child_env(CALFLOW_HOME=str(home), COLUMNS="100", NO_COLOR="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(receiver: Receiver, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while receiver.stats()["total"] < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the replay made no progress"
        time.sleep(0.05)


def only_job(store: IntegrationStore) -> str:
    jobs = JobStore(store.engine, store.vault).list()
    assert len(jobs) == 1
    return jobs[0].id


def test_replay_prints_the_json_summary(
    home: Path, store: IntegrationStore, receiver: Receiver
) -> None:
    result = run_calflow(home, *replay_args(receiver, "--limit", "40", "--json"))
    assert result.code == 0, str(result)
    data = result.json
    assert {"job", "fetched", "sent", "skipped", "failed", "duration_s", "items_per_s"} <= set(data)
    assert (data["fetched"], data["sent"], data["skipped"], data["failed"]) == (40, 40, 0, 0)
    assert data["items_per_s"] > 0
    shown = run_calflow(home, "replays", "show", data["job"], "--json")
    assert shown.code == 0 and shown.json["totals"]["sent"] == 40
    listed = run_calflow(home, "replays", "list", "--json")
    assert [j["job"] for j in listed.json] == [data["job"]]
    assert SECRET not in result.stdout + shown.stdout + listed.stdout


def test_replay_human_output_and_exit_1_on_failures(
    home: Path, store: IntegrationStore, receiver: Receiver
) -> None:
    receiver.mode(status=410)
    result = run_calflow(home, *replay_args(receiver, "--limit", "5"))
    assert result.code == 1, str(result)
    assert "failed 5" in result.stdout and "target refused x 5" in result.stdout
    assert "calflow replay --resume rpl_" in result.stdout


def test_dry_run_lists_items(home: Path, store: IntegrationStore, receiver: Receiver) -> None:
    result = run_calflow(
        home, "replay", "savvycal", "-i", "sc", "--dry-run", "--limit", "3", "--json"
    )
    assert result.code == 0, str(result)
    assert len(result.json["would_send"]) == 3
    human = run_calflow(home, "replay", "savvycal", "-i", "sc", "--dry-run", "--limit", "3")
    assert human.stdout.count("would send event.") == 3
    assert receiver.stats()["total"] == 0
    shown = run_calflow(home, "replays", "show", result.json["job"], "--json").json
    assert shown["totals"]["items"] == 0  # a dry run records no item, but its counts
    assert (shown["counts"]["fetched"], shown["counts"]["would_send"]) == (3, 3)


def _usage_error(result: Result, *needles: str) -> None:
    assert result.code == 2, str(result)
    for needle in needles:
        assert needle in result.err, str(result)


def test_bad_options_are_clear_usage_errors(
    home: Path, store: IntegrationStore, receiver: Receiver
) -> None:
    _usage_error(run_calflow(home, *replay_args(receiver, "--since", "last tuesday")), "--since")
    _usage_error(
        run_calflow(home, "replay", "zoom", "-i", "sc", "--dry-run"), "unknown provider 'zoom'"
    )
    _usage_error(
        run_calflow(home, "replay", "cal_com", "-i", "sc", "--dry-run"), "savvycal integration"
    )
    _usage_error(run_calflow(home, "replay", "-i", "nope", "--dry-run"), "no integration")
    _usage_error(
        run_calflow(home, "replay", "-i", "sc", "--to", receiver.url, "--secret", "x"),
        "allow-private",
    )
    _usage_error(run_calflow(home, "replay", "-i", "sc"), "--to URL or --into calflow")
    _usage_error(
        run_calflow(home, *replay_args(receiver, "--run-workflows")),
        "run_workflows: starts workflows of --into calflow only",
    )
    _usage_error(run_calflow(home, "replay", "--resume", "rpl_missing"), "no replay job")
    assert receiver.stats()["total"] == 0


def test_killed_replay_resumes_without_resending_what_was_recorded(
    home: Path, store: IntegrationStore, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    events = all_savvycal_events(sandbox)
    proc = start(home, *replay_args(receiver, "--rate", "150", "--concurrency", "4"))
    try:
        wait_for(receiver, 90, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    jobs = JobStore(store.engine, store.vault)
    job = only_job(store)
    assert jobs.get(job).status == "running"  # it never got to say otherwise
    before = receiver.stats()
    recorded = {i["item"] for i in jobs.items(job, "sent", limit=10_000)}
    assert 0 < len(recorded) <= before["total"] < len(events)

    resumed = run_calflow(home, "replay", "--resume", job, "--json", timeout=120)
    assert resumed.code == 0, str(resumed)
    assert resumed.json["status"] == "completed"
    after = receiver.stats()
    assert after["unique"] == len(events)  # nothing lost
    counts: dict[str, int] = {}
    for r in after["records"]:
        counts[r["id"]] = counts.get(r["id"], 0) + 1
    assert all(counts[i] == 1 for i in recorded)  # what was acknowledged is not sent again
    # only deliveries in flight at the kill (sent but not yet recorded) may repeat
    assert after["duplicates"] <= before["total"] - len(recorded)
    assert jobs.totals(job) == {"items": len(events), "sent": len(events), "skipped": 0,
                                "failed": 0}  # fmt: skip
    assert after["bad_signatures"] == 0


def test_ctrl_c_interrupts_cleanly_and_the_job_resumes(
    home: Path, store: IntegrationStore, receiver: Receiver, sandbox: SandboxProcess
) -> None:
    events = all_savvycal_events(sandbox)
    proc = start(home, *replay_args(receiver, "--rate", "150", "--concurrency", "4"))
    wait_for(receiver, 40, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    job = only_job(store)
    jobs = JobStore(store.engine, store.vault)
    assert jobs.get(job).status == "interrupted"
    resumed = run_calflow(home, "replay", "--resume", job, "--json", timeout=120)
    assert resumed.code == 0, str(resumed)
    after = receiver.stats()
    assert after["unique"] == len(events)
    assert after["duplicates"] <= 4 + 1  # at most what was in flight when interrupted
