"""Replay (issue #3): calflow's replay engine vs the published sequential backfill script.

Everything runs on loopback, each side in a process of its own: the sandbox (SavvyCal
seeded with N events), a receiver (``bench/receiver.py``) that verifies every
signature and counts unique envelope ids, the baseline (in this process: the
published algorithm, ``bench/replay_baseline.py``), and each calflow replay (a fresh
``bench/replay_child.py`` process, which reports its own time and peak RSS).

For each size N: a fresh sandbox; an untimed walk of the same query gives the
expected event ids (and warms the sandbox's lazily built events for both sides); then
baseline and calflow runs, interleaved (``--repeat`` of each at sizes up to 1,000, one
above; medians reported), the receiver reset before each, and every run checked at the
receiver: every expected event arrived (none lost, none foreign), no envelope id
twice, no bad signature.

    python bench/replay.py [--sizes 100,10000,100000] [--concurrency C] [--repeat 5]

The baseline is skipped at a size where its time, estimated from the largest size
measured before, would exceed ``--baseline-max-s`` (60 s); the estimate is reported.

Goals: 100 events end to end in under 0.3 s (ratio against the baseline of the same
run); 10,000 events at >= 2,000 events/s; 100,000 events with peak RSS under 200 MB;
zero lost and zero duplicate ids.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from receiver import receiver_process
from replay_baseline import QUERY, run_baseline
from sandbox_process import sandbox_process

TOKEN = "pt_secret_bench_replay"
SECRET = "whsec_bench_replay"
CHILD = Path(__file__).resolve().with_name("replay_child.py")
BASELINE_MAX_S = 60.0


@dataclass
class Check:
    """The receiver's view of one run, against the expected ids."""

    expected: int
    received_total: int
    unique_ids: int
    duplicates: int
    lost: int
    unexpected: int
    bad_signatures: int
    bad_bodies: int
    replay_id_mismatches: int
    types: dict[str, int]
    span_s: float | None
    first_at: float | None
    last_at: float | None

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.unexpected == 0
            and self.duplicates == 0
            and self.bad_signatures == 0
            and self.bad_bodies == 0
            and self.replay_id_mismatches == 0
        )


@dataclass
class Run:
    """One timed backfill (baseline or calflow)."""

    side: str
    size: int
    elapsed_s: float
    check: Check
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def items_per_s(self) -> float:
        return self.size / self.elapsed_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "size": self.size,
            "elapsed_s": round(self.elapsed_s, 4),
            "items_per_s": round(self.items_per_s, 1),
            "lost": self.check.lost,
            "duplicates": self.check.duplicates,
            "unexpected": self.check.unexpected,
            "bad_signatures": self.check.bad_signatures,
            "receiver_span_s": self.check.span_s and round(self.check.span_s, 4),
            **self.extra,
        }


def expected_ids(root: str) -> list[str]:
    """Every event id the backfill query returns (sorted), read page by page."""
    ids: list[str] = []
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        after: str | None = None
        while True:
            params = dict(QUERY) | ({"after": after} if after else {})
            resp = client.get(f"{root}/savvycal/v1/events", params=params)
            resp.raise_for_status()
            page = resp.json()
            ids += [event["id"] for event in page["entries"]]
            after = page["metadata"]["after"]
            if not after:
                return sorted(ids)


def sandbox_event_count(root: str) -> int:
    state = httpx.get(f"{root}/_sandbox/state", timeout=60).json()
    return int(state["savvycal"]["event_count"])


def check(receiver: str, expected: list[str]) -> Check:
    """Compare what the receiver accepted since its last reset with ``expected``."""
    stats = httpx.get(f"{receiver}/stats", timeout=60).json()
    got = set(httpx.get(f"{receiver}/ids", timeout=60).json())
    want = set(expected)
    return Check(
        expected=len(want),
        received_total=stats["total"],
        unique_ids=stats["unique"],
        duplicates=stats["duplicates"],
        lost=len(want - got),
        unexpected=len(got - want),
        bad_signatures=stats["bad_signatures"],
        bad_bodies=stats["bad_bodies"],
        replay_id_mismatches=stats["replay_id_mismatches"],
        types=stats["types"],
        span_s=stats["span_s"],
        first_at=stats["first_at"],
        last_at=stats["last_at"],
    )


def reset(receiver: str) -> None:
    httpx.post(f"{receiver}/reset", timeout=10).raise_for_status()


def baseline_run(root: str, receiver: str, expected: list[str]) -> Run:
    reset(receiver)
    result = run_baseline(f"{root}/savvycal", TOKEN, f"{receiver}/webhook", SECRET)
    return Run(
        "baseline",
        len(expected),
        result.elapsed_s,
        check(receiver, expected),
        {"pages": result.pages, "sent": result.sent},
    )


def calflow_run(
    root: str,
    receiver: str,
    expected: list[str],
    concurrency: int | None,
    profile: Path | None,
) -> Run:
    """One replay in a fresh child process (its own interpreter, store and RSS)."""
    reset(receiver)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLOW_")}
    env["CALFLOW_ALLOW_PRIVATE"] = "127.0.0.1,localhost"  # the sandbox and receivers
    env |= {"REPLAY_TOKEN": TOKEN, "REPLAY_SECRET": SECRET}
    cmd = [sys.executable, str(CHILD), "--root", root, "--to", f"{receiver}/webhook"]
    if concurrency is not None:
        cmd += ["--concurrency", str(concurrency)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, check=False)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"replay child failed ({proc.returncode}):\n{stderr[-4000:]}")
    out = json.loads(lines[-1])
    summary = out["summary"]
    result = check(receiver, expected)
    extra: dict[str, Any] = {}
    if result.first_at is not None and result.last_at is not None:
        # where the wall time goes: before the first delivery (start-up, first page),
        # between first and last (receiver_span_s), after the last (drain, final flush)
        extra["to_first_delivery_s"] = round(result.first_at - out["started_at"], 4)
        extra["after_last_delivery_s"] = round(out["ended_at"] - result.last_at, 4)
    extra |= {
        "cpu_s": round(out["cpu_s"], 3),
        "peak_rss_mb": round(out["peak_rss_mb"], 1),
        "rss_after_setup_mb": round(out["rss_setup_mb"], 1),
        "concurrency": out.get("concurrency"),
        "summary": {k: summary.get(k) for k in ("status", "fetched", "sent", "skipped", "failed")}
        | {"duration_s": summary.get("duration_s"), "items_per_s": summary.get("items_per_s")},
        "send_p95_ms": (summary.get("timings") or {}).get("send_p95_ms"),
    }
    return Run("calflow", len(expected), out["elapsed_s"], result, extra)


def _median(runs: list[Run]) -> float:
    return statistics.median(r.elapsed_s for r in runs)


def bench_size(
    size: int,
    receiver: str,
    args: argparse.Namespace,
    baseline_per_event_s: float | None,
) -> dict[str, Any]:
    """Every run at one size, against a sandbox seeded with exactly ``size`` events."""
    repeat = args.repeat if size <= 1000 else 1
    with sandbox_process(
        None, seed=0, savvycal_seed=size, savvycal_token=TOKEN, timeout_s=120
    ) as root:
        t0 = time.perf_counter()
        expected = expected_ids(root)
        walk_s = time.perf_counter() - t0
        count = sandbox_event_count(root)
        if len(expected) != count or len(set(expected)) != count:
            raise RuntimeError(f"query returned {len(expected)} ids, sandbox has {count}")
        print(f"[{size}] sandbox ready, {count} events (walk {walk_s:.2f} s)", file=sys.stderr)
        estimate = None if baseline_per_event_s is None else baseline_per_event_s * size
        run_baseline_here = not args.no_baseline and (
            estimate is None or estimate < args.baseline_max_s
        )
        baseline: list[Run] = []
        calflow: list[Run] = []
        for i in range(repeat):
            if run_baseline_here:
                baseline.append(baseline_run(root, receiver, expected))
                print(f"[{size}] baseline {baseline[-1].to_dict()}", file=sys.stderr)
            if args.no_calflow:
                continue
            profile = args.profile / f"replay-{size}-{i}.prof" if args.profile else None
            calflow.append(calflow_run(root, receiver, expected, args.concurrency, profile))
            print(f"[{size}] calflow {calflow[-1].to_dict()}", file=sys.stderr)
    out: dict[str, Any] = {"size": size, "events": count, "page_walk_s": round(walk_s, 3)}
    if calflow:
        out |= {
            "calflow_runs": [r.to_dict() for r in calflow],
            "calflow_median_s": round(_median(calflow), 4),
            "calflow_items_per_s": round(size / _median(calflow), 1),
            "calflow_peak_rss_mb": max(r.extra["peak_rss_mb"] for r in calflow),
        }
    if baseline:
        out |= {
            "baseline_runs": [r.to_dict() for r in baseline],
            "baseline_median_s": round(_median(baseline), 4),
            "baseline_items_per_s": round(size / _median(baseline), 1),
        }
        if calflow:
            out["ratio_baseline_to_calflow"] = round(_median(baseline) / _median(calflow), 2)
    elif estimate is not None and not args.no_baseline:
        out["baseline_note"] = (
            f"not run: estimated {estimate:.0f} s at the largest measured size's "
            f"{size / estimate:.0f} events/s (limit {args.baseline_max_s:.0f} s)"
        )
        out["baseline_estimated_s"] = round(estimate, 1)
        if calflow:
            out["ratio_baseline_to_calflow_estimated"] = round(estimate / _median(calflow), 2)
    out["all_checks_ok"] = all(r.check.ok for r in baseline + calflow)
    out["lost"] = sum(r.check.lost for r in baseline + calflow)
    out["duplicates"] = sum(r.check.duplicates for r in baseline + calflow)
    return out


def _goals(results: dict[int, dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """``(goal, met or None when not measured, figure)`` for each goal of issue #3."""
    goals: list[tuple[str, bool | None, str]] = []
    r = results.get(100)
    if r is None or "calflow_median_s" not in r:
        goals.append(("100 events end to end < 0.3 s", None, "size 100 not run"))
    else:
        ratio = r.get("ratio_baseline_to_calflow")
        figure = f"{r['calflow_median_s']} s median"
        if ratio:
            figure += (
                f"; baseline {r['baseline_median_s']} s, ratio baseline/calflow {ratio}"
                f" ({'calflow faster' if ratio > 1 else 'calflow SLOWER'})"
            )
        goals.append(("100 events end to end < 0.3 s", r["calflow_median_s"] < 0.3, figure))
    r = results.get(10_000)
    if r is None or "calflow_items_per_s" not in r:
        goals.append(("10,000 events at >= 2,000 events/s", None, "size 10000 not run"))
    else:
        eps = r["calflow_items_per_s"]
        goals.append(("10,000 events at >= 2,000 events/s", eps >= 2000, f"{eps} events/s"))
    r = results.get(100_000)
    if r is None or "calflow_peak_rss_mb" not in r:
        goals.append(("100,000 events, peak RSS < 200 MB", None, "size 100000 not run"))
    else:
        rss = r["calflow_peak_rss_mb"]
        goals.append(("100,000 events, peak RSS < 200 MB", rss < 200, f"{rss} MB"))
    lost = sum(r["lost"] for r in results.values())
    dups = sum(r["duplicates"] for r in results.values())
    ok = all(r["all_checks_ok"] for r in results.values())
    goals.append(("zero lost, zero duplicate ids", ok, f"lost {lost}, duplicates {dups}"))
    return goals


def _slow_goals(
    results: dict[int, dict[str, Any]], args: argparse.Namespace
) -> list[tuple[str, bool | None, str]]:
    """Issue #15's goals against a slow ordinary receiver (``--receiver-delay-ms``)."""
    goals: list[tuple[str, bool | None, str]] = []
    delay = float(args.receiver_delay_ms)
    for size, r in sorted(results.items()):
        ratio = r.get("ratio_baseline_to_calflow")
        goals.append((f"{size:,} events >= 20x the sequential script", None if ratio is None
                      else ratio >= 20, f"{ratio}x"))  # fmt: skip
        p95s = [run.get("send_p95_ms") for run in r.get("calflow_runs", [])]
        p95 = max((p for p in p95s if p is not None), default=None)
        # the receiver's latency: what the sequential script waits per request (its
        # handler's delay, plus what http.server's two writes cost on the wire)
        each = r["baseline_median_s"] / size * 1000 if "baseline_median_s" in r else None
        figure = f"p95 {p95} ms; the receiver answers one request in {each and round(each, 1)} ms"
        figure += f" (its handler sleeps {delay:g} ms)"
        met = None if p95 is None or each is None else p95 <= 3 * each
        goals.append((f"{size:,} events: send p95 within 3x the receiver's latency", met,
                      figure))  # fmt: skip
        failed = sum((run["summary"].get("failed") or 0) for run in r.get("calflow_runs", []))
        dups = r["duplicates"]
        goals.append((f"{size:,} events: no item retried or lost", failed == 0 and dups == 0
                      and r["lost"] == 0, f"failed {failed}, sent twice {dups}"))  # fmt: skip
    return goals


def _table(results: dict[int, dict[str, Any]]) -> list[str]:
    """A Markdown table of the medians, one row per size and side."""
    rows = [
        "| events | side | runs | median s | events/s | peak RSS MB | lost | duplicates |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in sorted(results.items()):
        for side in ("baseline", "calflow"):
            runs = r.get(f"{side}_runs")
            if not runs:
                if side == "baseline" and "baseline_note" in r:
                    rows.append(f"| {size:,} | baseline | 0 | {r['baseline_note']} | | | | |")
                continue
            rss = r["calflow_peak_rss_mb"] if side == "calflow" else ""
            lost = sum(run["lost"] for run in runs)
            dups = sum(run["duplicates"] for run in runs)
            rows.append(
                f"| {size:,} | {side} | {len(runs)} | {r[f'{side}_median_s']} "
                f"| {r[f'{side}_items_per_s']:,.0f} | {rss} | {lost} | {dups} |"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="comma-separated")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the engine's")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side, sizes <= 1000")
    parser.add_argument(
        "--baseline-max-s",
        type=float,
        default=BASELINE_MAX_S,
        help="skip the baseline at a size whose estimate exceeds this",
    )
    parser.add_argument("--no-baseline", action="store_true", help="calflow runs only")
    parser.add_argument("--no-calflow", action="store_true", help="baseline runs only")
    parser.add_argument("--profile", type=Path, default=None, help="dir for cProfile files")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--receiver-delay-ms", type=float, default=None,
        help="deliver to Python's threaded http.server taking this long per delivery "
        "(default: bench/receiver.py's fast asyncio receiver)",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, Any]] = {}
    per_event: float | None = None
    with receiver_process(SECRET, args.receiver_delay_ms) as receiver:
        for size in sizes:
            results[size] = bench_size(size, receiver, args, per_event)
            if "baseline_median_s" in results[size]:  # the largest size measured so far
                per_event = results[size]["baseline_median_s"] / size
    figures = {"concurrency": args.concurrency, "receiver_delay_ms": args.receiver_delay_ms,
               "sizes": [results[s] for s in sizes]}  # fmt: skip
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print("\n".join(_table(results)))
    goals = _goals(results) if args.receiver_delay_ms is None else _slow_goals(results, args)
    for name, met, figure in goals:
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        print(f"{name}: {figure} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
