"""Ingest: signed Cal.com deliveries into ``calflow serve`` (SQLite), vs a bare uvicorn app.

For each concurrency level C (``--concurrency 16,64``), on loopback, each server in a
process of its own:

1. **baseline** (the transport ceiling): ``bench/ingest_baseline.py``, uvicorn with a
   plain ASGI app that reads the body and answers 200; no verification, no storage;
2. **calflow**: ``python -m calflow.cli.main serve`` on a fresh ``CALFLOW_HOME`` (its
   own SQLite database) holding one Cal.com integration with a webhook secret
   (``bench/ingest_setup.py``); deliveries go to ``POST /hooks/{integration_id}``.
   ``calflow serve`` runs the workflow engine (DBOS and the dispatcher) in the same
   process by default; ``--serve-arg=--no-worker`` measures the receiver alone.

Both get exactly the same requests: ``--n`` Cal.com ``BOOKING_CREATED`` bodies signed
with ``X-Cal-Signature-256`` (hex HMAC-SHA256 of the raw body), each with its own
``payload.uid``, of which ``--dup-rate`` (20 %) are exact resends of a body sent at
least 2*C deliveries earlier (same bytes, same signature: a provider's retry).
Bodies, signatures and request bytes are all built before timing. ``--warmup``
distinct deliveries go first, untimed. The load generator is a lean asyncio
HTTP/1.1 client (C keep-alive connections, one request in flight on each; ~0.1 ms of
CPU per request, so it does not starve the server on a 2-core machine): closed loop
by default (each connection sends its next delivery as soon as the previous one is
answered), or paced with ``--rate R`` (deliveries due at t0 + i/R; latency counted
from the due time, so a stalled server is not hidden by a stalled sender).

Reported for each side and C: sent, accepted (200), errors by status, accepted
deliveries/s (accepted / wall time from the first send to the last answer), latency
p50/p95/p99/max, server and client CPU per request; for calflow also duplicates sent
vs answered ``"duplicate": true`` (the collapse rate), false duplicates, whether every
resend got its original's event id, and the rows in the ``events`` and
``event_deliveries`` tables afterwards (must equal the distinct deliveries and the
accepted deliveries, each event's first ``KEPT_DELIVERIES`` of them where the tree run
keeps only those as rows: nothing lost, nothing doubled) and how many events the dispatcher
had taken when the server stopped; then calflow/baseline ratios.

    python bench/ingest.py [--n 20000] [--concurrency 16,64] [--dup-rate 0.2]
                           [--warmup 500] [--rate R] [--serve-arg=--no-worker]
                           [--src DIR] [--json [FILE]]

Goal (2-core machine): >= 1,000 deliveries/s durably accepted at p99 < 50 ms, with
every distinct delivery stored exactly once. In the closed loop, mean latency is
C / throughput (Little's law), so at C = 64 a p99 under 50 ms needs well over
1,280 deliveries/s. The machine is shared: each level records the load average and
the median write+fdatasync time of the disk before and after, to tell a slow run from
a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import copy
import hashlib
import hmac
import json
import math
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

HERE = Path(__file__).resolve().parent
BASELINE_SERVER = HERE / "ingest_baseline.py"
SETUP = HERE / "ingest_setup.py"
SECRET = "whsec_bench_ingest"
GOAL_PER_S = 1000.0
GOAL_P99_MS = 50.0
TIMEOUT_S = 30.0
_WAITED = "resend_waited_for_original"  # a counter kept with the errors, not one
CAL_BODY: dict[str, Any] = {
    "triggerEvent": "BOOKING_CREATED",
    "createdAt": "2026-11-20T10:00:00.000Z",
    "payload": {
        "type": "30min",
        "title": "30 min between Host and Ann",
        "startTime": "2026-12-01T09:00:00Z",
        "endTime": "2026-12-01T09:30:00Z",
        "organizer": {
            "id": 1,
            "name": "Host",
            "email": "host@example.com",
            "timeZone": "Europe/Paris",
            "language": {"locale": "en"},
        },
        "attendees": [
            {
                "name": "Ann Lee",
                "email": "ann@example.com",
                "timeZone": "Europe/Paris",
                "phoneNumber": "+33612345678",
                "language": {"locale": "fr"},
            }
        ],
        "uid": "uid-recv-1",
        "bookingId": 9,
        "eventTypeId": 101,
        "status": "ACCEPTED",
    },
}  # fmt: skip  (the body of tests/events/test_receiver.py)


# -- deliveries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST: the raw body, its signature, and the index of the delivery it resends."""

    body: bytes
    signature: str
    original: int | None  # None: a distinct delivery; else the index it duplicates


def _signed(tag: str, i: int) -> tuple[bytes, str]:
    data = copy.deepcopy(CAL_BODY)
    payload = data["payload"]
    payload["uid"] = f"bench-{tag}-{i:07d}"
    payload["bookingId"] = 100_000 + i
    payload["attendees"][0]["email"] = f"guest{i}@example.com"
    body = json.dumps(data, separators=(",", ":")).encode()
    return body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def make_deliveries(n: int, dup_rate: float, gap: int, tag: str, seed: int) -> list[Delivery]:
    """``n`` deliveries; ``round(n * dup_rate)`` are exact resends of one >= ``gap`` before."""
    rng = random.Random(seed)
    n_dup = round(n * dup_rate)
    first_dup = gap + 1
    if n_dup > max(0, n - first_dup):
        raise ValueError(f"{n_dup} duplicates do not fit in {n} deliveries with a gap of {gap}")
    dup_at = set(rng.sample(range(first_dup, n), n_dup)) if n_dup else set()
    out: list[Delivery] = []
    distinct_at: list[int] = []  # indexes of the distinct deliveries, ascending
    for i in range(n):
        if i in dup_at:
            eligible = bisect.bisect_right(distinct_at, i - gap)
            j = distinct_at[rng.randrange(eligible)]
            out.append(Delivery(out[j].body, out[j].signature, j))
        else:
            body, sig = _signed(tag, i)
            out.append(Delivery(body, sig, None))
            distinct_at.append(i)
    return out


def requests_for(deliveries: list[Delivery], port: int, path: str) -> list[bytes]:
    """The raw HTTP/1.1 requests (head and body in one buffer each)."""
    out = []
    for d in deliveries:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nX-Cal-Signature-256: {d.signature}\r\n"
            f"Content-Length: {len(d.body)}\r\n\r\n"
        )
        out.append(head.encode("latin-1") + d.body)
    return out


# -- load generator ----------------------------------------------------------------------


class _Conn:
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=64 * 1024)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send one request; ``(status, body, server closes)`` of its answer."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise ValueError("answer without Content-Length")
        length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
        body = await self.reader.readexactly(length) if length else b""
        return status, body, b"\r\nconnection: close" in lower

    def close(self) -> None:
        self.writer.close()


@dataclass
class Load:
    """What the sender saw: per request status (-1: no answer), latency s, answer body."""

    statuses: list[int]
    latencies: list[float]
    bodies: list[bytes]
    wall_s: float
    client_cpu_s: float
    server_cpu_s: tuple[float, float]  # user, system
    errors: Counter[str]


async def _drive(
    port: int,
    requests: list[bytes],
    originals: list[int | None],
    concurrency: int,
    rate: float | None,
) -> tuple[list[int], list[float], list[bytes], float, Counter[str]]:
    n = len(requests)
    # a resend goes out only once its original was answered (a provider retries after
    # an answer or a timeout, never alongside the first attempt)
    answered = {j: asyncio.Event() for j in originals if j is not None}
    statuses = [0] * n
    latencies = [0.0] * n
    bodies = [b""] * n
    errors: Counter[str] = Counter()
    conns = [await _Conn.open(port) for _ in range(concurrency)]
    next_i = 0
    t0 = time.perf_counter()
    clock = time.perf_counter

    async def reopen(conn: _Conn) -> _Conn | None:
        conn.close()
        try:
            return await _Conn.open(port)
        except OSError:
            errors["reconnect_failed"] += 1
            return None

    async def worker(first: _Conn) -> None:
        nonlocal next_i
        conn: _Conn | None = first
        while conn is not None and next_i < n:
            i = next_i
            next_i += 1
            if rate is None:
                start = clock()
            else:
                start = t0 + i / rate
                delay = start - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            original = originals[i]
            if original is not None and not answered[original].is_set():
                errors[_WAITED] += 1
                await answered[original].wait()
                start = clock()  # the wait is the sender's doing, not the server's
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    status, body, closing = await conn.exchange(requests[i])
            except (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                latencies[i] = clock() - start
                statuses[i] = -1
                errors[type(exc).__name__] += 1
                if i in answered:
                    answered[i].set()
                conn = await reopen(conn)
                continue
            latencies[i] = clock() - start
            statuses[i] = status
            bodies[i] = body
            if i in answered:
                answered[i].set()
            if closing:
                conn = await reopen(conn)
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker(c) for c in conns))
    wall = clock() - t0
    return statuses, latencies, bodies, wall, errors


def _proc_cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_load(
    port: int,
    server_pid: int,
    requests: list[bytes],
    deliveries: list[Delivery],
    concurrency: int,
    rate: float | None,
) -> Load:
    originals = [d.original for d in deliveries]
    cpu0, server0 = time.process_time(), _proc_cpu_s(server_pid)
    statuses, latencies, bodies, wall, errors = asyncio.run(
        _drive(port, requests, originals, concurrency, rate)
    )
    user1, sys1 = _proc_cpu_s(server_pid)
    server_cpu = (user1 - server0[0], sys1 - server0[1])
    return Load(statuses, latencies, bodies, wall, time.process_time() - cpu0, server_cpu, errors)


# -- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SRC: Path | None = None  # --src: run calflow from this source tree instead


def kept_deliveries() -> int | None:
    """How many deliveries of one event the calflow run keeps as rows (None: all)."""
    if SRC is not None:
        inbox = SRC / "calflow" / "events" / "inbox.py"
        found = re.search(r"^KEPT_DELIVERIES = (\d+)", inbox.read_text(), re.M)
        return int(found.group(1)) if found else None
    from calflow.events.inbox import KEPT_DELIVERIES

    return KEPT_DELIVERIES


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no ``CALFLOW_*`` of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLOW_")}
    env["CALFLOW_ALLOW_PRIVATE"] = "127.0.0.1,localhost"  # the sandbox and receivers
    if SRC is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]


@contextmanager
def server_process(cmd: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """Start ``cmd``, wait until ``GET /healthz`` answers 200, yield its pid; stop it on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{cmd} did not start:\n{_log_tail(log)}") from None
                    time.sleep(0.05)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.returncode not in (0, -15):
            print(f"server exited {proc.returncode}:\n{_log_tail(log)}", file=sys.stderr)


def setup_home(home: Path) -> str:
    """Migrate a fresh home and add the Cal.com integration; its id."""
    env = child_env(CALFLOW_HOME=str(home), INGEST_SECRET=SECRET)
    out = subprocess.run(
        [sys.executable, str(SETUP)], env=env, capture_output=True, check=False, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"setup failed: {out.stderr.decode(errors='replace')[-4000:]}")
    return out.stdout.decode().strip().splitlines()[-1]


def fsync_ms(directory: Path, rounds: int = 100) -> float:
    """Median ms of a 4 kB write + fdatasync in ``directory``: the disk's durable-commit floor.

    A noisy neighbour (another test suite on the same machine) shows up here first.
    """
    times = []
    with tempfile.NamedTemporaryFile(dir=directory) as f:
        for _ in range(rounds):
            t0 = time.perf_counter()
            os.write(f.fileno(), b"x" * 4096)
            os.fdatasync(f.fileno())
            times.append(time.perf_counter() - t0)
    return round(sorted(times)[rounds // 2] * 1000, 3)


def machine_state() -> dict[str, Any]:
    """Load average and fsync latency now (the machine is shared; figures need context)."""
    return {
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "fsync_ms": fsync_ms(Path(tempfile.gettempdir())),
    }


def count_rows(db: Path) -> dict[str, int]:
    queries = {
        "events": "SELECT count(*) FROM events",
        "event_deliveries": "SELECT count(*) FROM event_deliveries",
        "dispatched": "SELECT count(*) FROM events WHERE dispatched_at IS NOT NULL",
    }
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}


# -- figures -----------------------------------------------------------------------------


def _pct(sorted_s: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in ms."""
    if not sorted_s:
        return float("nan")
    rank = max(1, min(len(sorted_s), math.ceil(q * len(sorted_s))))
    return round(sorted_s[rank - 1] * 1000, 2)


def transport_figures(load: Load) -> dict[str, Any]:
    """Throughput, latency and CPU of one load."""
    sent = len(load.statuses)
    accepted = sum(1 for s in load.statuses if s == 200)
    names = {0: "not_sent", -1: "no_answer"}
    errors = Counter(names.get(s, str(s)) for s in load.statuses if s != 200)
    ok = sorted(lat for lat, s in zip(load.latencies, load.statuses, strict=True) if s == 200)
    return {
        "sent": sent,
        "accepted": accepted,
        "errors": dict(sorted(errors.items())),
        "error_kinds": {k: v for k, v in load.errors.items() if k != _WAITED},
        "resends_held_for_original": load.errors[_WAITED],
        "wall_s": round(load.wall_s, 3),
        "per_s": round(accepted / load.wall_s, 1),
        "p50_ms": _pct(ok, 0.50),
        "p95_ms": _pct(ok, 0.95),
        "p99_ms": _pct(ok, 0.99),
        "max_ms": _pct(ok, 1.0),
        "mean_ms": round(sum(ok) / len(ok) * 1000, 2) if ok else None,
        "server_cpu_us_per_req": round(sum(load.server_cpu_s) / sent * 1e6, 1),
        "server_sys_cpu_us_per_req": round(load.server_cpu_s[1] / sent * 1e6, 1),
        "server_cpu_util": round(sum(load.server_cpu_s) / load.wall_s, 2),
        "client_cpu_us_per_req": round(load.client_cpu_s / sent * 1e6, 1),
    }


def dedupe_figures(load: Load, deliveries: list[Delivery]) -> dict[str, Any]:
    """What calflow answered about duplicates, delivery by delivery."""
    event_of: list[str | None] = []
    reported_dup: list[bool] = []
    for status, body in zip(load.statuses, load.bodies, strict=True):
        answer = json.loads(body) if status == 200 else {}
        event_of.append(answer.get("event"))
        reported_dup.append(answer.get("duplicate") is True)
    dups = [i for i, d in enumerate(deliveries) if d.original is not None]
    collapsed = sum(1 for i in dups if reported_dup[i])
    same_event = sum(
        1
        for i in dups
        if event_of[i] is not None and event_of[i] == event_of[deliveries[i].original or 0]
    )
    false_dups = sum(1 for i, d in enumerate(deliveries) if d.original is None and reported_dup[i])
    return {
        "distinct_sent": len(deliveries) - len(dups),
        "duplicates_sent": len(dups),
        "duplicates_reported": collapsed,
        "collapse_rate": round(collapsed / len(dups), 4) if dups else None,
        "duplicates_with_original_event_id": same_event,
        "false_duplicates": false_dups,
        "distinct_event_ids": len({e for e in event_of if e is not None}),
    }


# -- one level ---------------------------------------------------------------------------


def bench_baseline(
    concurrency: int, deliveries: list[Delivery], warm: list[Delivery], args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, str(BASELINE_SERVER), "--port", str(port)]
    with server_process(cmd, child_env(), port) as pid:
        path = "/hooks/int_baseline"
        run_load(port, pid, requests_for(warm, port, path), warm, concurrency, None)
        load = run_load(
            port, pid, requests_for(deliveries, port, path), deliveries, concurrency, args.rate
        )
    return transport_figures(load)


def bench_calflow(
    concurrency: int, deliveries: list[Delivery], warm: list[Delivery], args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"calflow-ingest-c{concurrency}-") as tmp:
        home = Path(tmp)
        integration = setup_home(home)
        port = free_port()
        cmd = [sys.executable, "-m", "calflow.cli.main", "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), *args.serve_arg]
        with server_process(cmd, child_env(CALFLOW_HOME=str(home)), port) as pid:
            path = f"/hooks/{integration}"
            warm_load = run_load(port, pid, requests_for(warm, port, path), warm, concurrency, None)
            if args.profile_pause:
                print(f"[c={concurrency}] server pid {pid}; timed run in 3 s", file=sys.stderr)
                time.sleep(3)
            reqs = requests_for(deliveries, port, path)
            load = run_load(port, pid, reqs, deliveries, concurrency, args.rate)
        rows = count_rows(home / "calflow.db")
        db_mb = sum(p.stat().st_size for p in home.glob("calflow.db*")) / 1e6
    out = transport_figures(load)
    out |= dedupe_figures(load, deliveries)
    warm_ok = sum(1 for s in warm_load.statuses if s == 200)
    want_events = len(warm) + out["distinct_sent"]
    kept = kept_deliveries()
    per_event = Counter(i if d.original is None else d.original for i, d in enumerate(deliveries))
    counts = list(per_event.values())
    timed_rows = sum(counts) if kept is None else sum(min(n, kept) for n in counts)
    want_deliveries = warm_ok + (timed_rows if out["accepted"] == out["sent"] else out["accepted"])
    out |= {
        "warmup_accepted": warm_ok,
        "events_rows": rows["events"],
        "events_expected": want_events,
        "delivery_rows": rows["event_deliveries"],
        "delivery_rows_expected": want_deliveries,
        "dispatched_rows_at_stop": rows["dispatched"],
        "db_mb": round(db_mb, 1),
    }
    out["integrity_ok"] = (
        rows["events"] == want_events
        and rows["event_deliveries"] == want_deliveries
        and out["accepted"] == out["sent"]
        and warm_ok == len(warm)
        and out["duplicates_reported"] == out["duplicates_sent"]
        and out["duplicates_with_original_event_id"] == out["duplicates_sent"]
        and out["false_duplicates"] == 0
    )
    return out


def bench_level(concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed * 1000 + concurrency
    deliveries = make_deliveries(args.n, args.dup_rate, 2 * concurrency, f"c{concurrency}", seed)
    warm = make_deliveries(args.warmup, 0.0, 0, f"warm{concurrency}", seed)
    level: dict[str, Any] = {"concurrency": concurrency, "rate": args.rate}
    level["body_bytes"] = round(sum(len(d.body) for d in deliveries) / len(deliveries))
    level["machine_before"] = machine_state()
    if not args.no_baseline:
        level["baseline"] = bench_baseline(concurrency, deliveries, warm, args)
        print(f"[c={concurrency}] baseline {json.dumps(level['baseline'])}", file=sys.stderr)
    level["calflow"] = cf = bench_calflow(concurrency, deliveries, warm, args)
    print(f"[c={concurrency}] calflow {json.dumps(cf)}", file=sys.stderr)
    base = level.get("baseline")
    if base:
        level["ratio_calflow_to_baseline"] = {
            "per_s": round(cf["per_s"] / base["per_s"], 3),
            "p50_ms": round(cf["p50_ms"] / base["p50_ms"], 2),
            "p99_ms": round(cf["p99_ms"] / base["p99_ms"], 2),
            "server_cpu_us_per_req": round(
                cf["server_cpu_us_per_req"] / base["server_cpu_us_per_req"], 2
            ),
        }
    level["machine_after"] = machine_state()
    level["goal_met"] = bool(
        cf["per_s"] >= GOAL_PER_S and cf["p99_ms"] < GOAL_P99_MS and cf["integrity_ok"]
    )
    return level


# -- output ------------------------------------------------------------------------------


def table(levels: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| C | side | sent | accepted | errors | deliveries/s | p50 ms | p95 ms | p99 ms "
        "| server CPU µs/req | client CPU µs/req | dups sent | dups collapsed | events stored |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in levels:
        for side in ("baseline", "calflow"):
            r = lv.get(side)
            if r is None:
                continue
            errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
            dups = (
                (
                    f"{r['duplicates_sent']:,}",
                    f"{r['duplicates_reported']:,} ({r['collapse_rate']:.1%})",
                    f"{r['events_rows']:,} / {r['events_expected']:,}",
                )
                if side == "calflow"
                else ("", "", "")
            )
            rows.append(
                f"| {lv['concurrency']} | {side} | {r['sent']:,} | {r['accepted']:,} | {errors} "
                f"| {r['per_s']:,.0f} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
                f"| {r['server_cpu_us_per_req']:,.0f} | {r['client_cpu_us_per_req']:,.0f} "
                f"| {' | '.join(dups)} |"
            )
    return rows


def verdict(lv: dict[str, Any]) -> str:
    cf = lv["calflow"]
    line = (
        f"concurrency {lv['concurrency']}: {cf['per_s']:,.0f} deliveries/s accepted, "
        f"p50 {cf['p50_ms']} ms, p99 {cf['p99_ms']} ms; collapse {cf['duplicates_reported']}"
        f"/{cf['duplicates_sent']}; events stored {cf['events_rows']}/{cf['events_expected']}"
        f" ({'nothing lost' if cf['integrity_ok'] else 'INTEGRITY CHECK FAILED'})"
    )
    ratio = lv.get("ratio_calflow_to_baseline")
    if ratio:
        line += (
            f"; baseline {lv['baseline']['per_s']:,.0f}/s p99 {lv['baseline']['p99_ms']} ms,"
            f" ratio calflow/baseline {ratio['per_s']:.2f}x throughput, "
            f"{ratio['p99_ms']:.1f}x p99"
        )
    before, after = lv["machine_before"], lv["machine_after"]
    line += (
        f"; machine: load {before['loadavg_1m']}->{after['loadavg_1m']},"
        f" fsync {before['fsync_ms']}->{after['fsync_ms']} ms"
    )
    goal = f">= {GOAL_PER_S:,.0f}/s at p99 < {GOAL_P99_MS:.0f} ms"
    return line + f" -- goal ({goal}): {'met' if lv['goal_met'] else 'NOT met'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="timed deliveries per run")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated levels")
    parser.add_argument("--dup-rate", type=float, default=0.2, help="share of exact resends")
    parser.add_argument("--warmup", type=int, default=500, help="untimed deliveries first")
    parser.add_argument(
        "--rate", type=float, default=None, help="send at this many/s (default: closed loop)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="run calflow from this tree (put first on PYTHONPATH), e.g. a `git archive` of HEAD",
    )
    parser.add_argument("--no-baseline", action="store_true", help="calflow only")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `calflow serve` (repeatable), e.g. --serve-arg=--no-worker",
    )
    parser.add_argument(
        "--profile-pause", action="store_true", help="print the server pid, wait 3 s before timing"
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="alone: print only the JSON figures; with FILE: also write them there",
    )
    args = parser.parse_args()
    global SRC
    SRC = args.src.resolve() if args.src else None
    levels = [bench_level(int(c), args) for c in args.concurrency.split(",")]
    figures = {
        "n": args.n,
        "dup_rate": args.dup_rate,
        "warmup": args.warmup,
        "rate": args.rate,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "calflow_src": str(SRC) if SRC else "installed (the work tree)",
        "serve_args": args.serve_arg,
        "levels": levels,
    }
    text = json.dumps(figures, indent=2)
    if args.json not in (None, "-"):
        Path(args.json).write_text(text + "\n")
    print(text)
    human = args.json != "-"  # a bare --json: the JSON alone on stdout
    if human:
        print("\n".join(table(levels)))
    for lv in levels:
        print(verdict(lv), file=sys.stdout if human else sys.stderr)
    return 0 if all(lv["calflow"]["integrity_ok"] for lv in levels) else 1


if __name__ == "__main__":
    sys.exit(main())
