"""Workflows end to end: signed Cal.com deliveries -> inbox -> runs in DBOS batches -> SMS.

Part 1, **throughput** (``--levels sqlite,pg1,pg2``). A one-step workflow (trigger
``created``; step ``twilio.SendSms`` to ``{{ attendee.phone }}``, body
``hi {{ booking.uid }}``, integration ``sms`` pointed at the Twilio sandbox) and ``--n``
distinct signed ``BOOKING_CREATED`` deliveries POSTed to ``/hooks/{integration}`` by the
lean keep-alive client of ``bench/ingest.py`` (``--concurrency`` connections, closed
loop, or paced with ``--rate``). Levels, each on a fresh database, each process on its
own (child environment without the developer's ``CALFLOW_*``):

- ``sqlite``: one ``calflow serve`` (receiver + engine in one process, SQLite);
- ``sqlite_w2`` (``sqlite_w1``): what ``calflow serve --workers 2`` (1) runs: the
  receiver (``serve --no-worker``) and two (one) ``calflow worker`` processes on the
  same SQLite home, one machine: still one instance;
- ``pg1``: PostgreSQL (a fresh database, dropped after), ``calflow serve --no-worker``
  + one ``calflow worker``;
- ``pg2``: the same with two workers.

The Twilio sandbox runs in its own process, one per level, through
``bench/workflows_sandbox.py`` (``calflow sandbox`` with httpx's TLS context built once:
the stock simulator spends ~20 ms of CPU per message building one, see that file;
``--stock-sandbox`` runs it unpatched). ``--warmup`` events go first and are waited for
(untimed). Timed: from the first POST (t0) to the last run's ``finished_at``.
Reported: end-to-end events/s (N / that time), intake rate (accepted / time to send
them all), processing rate (N / first run created -> last run finished) and its steady
10-90 % rate, per-event lag (run finished - event received) p50/p99/max, runs by
status, webhook answer latency p50/p99 while the engine works at full load (against the
intake baseline's, measured in the same run; goal p99 <= 200 ms at concurrency 16),
SMS recorded at the sandbox (each body exactly once?), CPU ms per event of
every process (and of the PostgreSQL backends of the benchmark's database), the share
of the machine's CPU other jobs used meanwhile (the machine is shared), PostgreSQL
transactions and rows per event (``pg_stat_database``), DBOS system rows per event.

**Baselines**, measured in the same run (``--no-baseline`` skips them):

- ``intake_<backend>``: the same N deliveries into ``calflow serve --no-worker`` on a
  fresh SQLite / PostgreSQL database (the inbox alone: verify, normalize, store);
- ``sms``: N ``twilio.SendSms`` calls through ``Runner.run_action`` (calflow's action
  layer, no engine) at the Twilio app's concurrency (10) against a fresh sandbox
  (``bench/workflows_sms.py``);
- ``dbos_<backend>_<k>``: bare DBOS (``bench/workflows_dbos.py``): ``--dbos-n``
  workflows of k no-op steps (``--dbos-steps 0,3``) on a queue set up like calflow's
  runs queue: the floor under any run with that many checkpoints, and from 0 and k
  steps the cost of one workflow and of one step.

An engine that added nothing would move events at the rate of the slower of intake and
SMS (``ceiling``); end-to-end / ceiling is what the engine keeps of it, and CPU per
event over the two baselines' summed CPU per event is what each run costs. Against
bare DBOS with as many steps as the runs checkpointed: how much of the engine's CPU
per run DBOS alone accounts for.

Part 2, **head of line** (``--blocking 40``): that many runs waiting for reminders due
in an hour, then 5 immediate SMS events: do they finish within ``--blocking-wait`` s?

Part 3, **reminder precision** (``--reminders 10000,30``, ``--reminder-levels
sqlite``). A workflow whose only step is the same SMS ``at: {before_start: 60s}``; N
bookings whose start times are spread so that the reminders all fall due within
``--reminder-window`` seconds (60), the first ``--reminder-lead`` seconds after
publishing starts (default 20 s + 7 s per 1,000: intake and dispatch first). The
deliveries go through the receiver; then the runs' states are sampled every second
(calflow's ``runs`` and DBOS's ``workflow_status``) until every reminder is finished or
``--reminder-drain`` seconds after the last due time. Lateness = ``run_steps.started_at``
of the SMS attempt - due time: p50/p99/max over all N (a reminder never sent counts as
infinitely late), sent / skipped as past / not finished, duplicates in ``run_steps``
and at the sandbox (each body once). Baseline: the lateness of N ``asyncio.sleep``
timers due within 3 s in the bench process (what an in-process timer achieves here).

Diagnostics: ``--profile DIR`` records each engine process with py-spy during the
timed parts (``--profile-mode gil``: the GIL holder only, i.e. Python CPU) and adds a
summary (``bench/workflows_profile.py``); ``--sql-count DIR`` runs the engines through
``bench/workflows_sqlcount.py`` and adds SQL statements and commits per event by the
calflow or DBOS function that issued them. Both slow the engines: use them in a
separate run from the figures. ``--rev REV`` runs calflow from ``git archive REV``
(others may be editing the work tree); the figures record which code ran.

    python bench/workflows.py [--rev HEAD] [--n 2000] [--levels sqlite,pg1,pg2]
                              [--reminders 10000,30] [--blocking 40] [--profile DIR]
                              [--sql-count DIR] [--json [FILE]]

Goals (2-core machine): >= 220 events/s end to end on one instance; more with a second
worker on PostgreSQL; reminder lateness p99 <= 2 s, each reminder sent exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

import ingest
from workflows_profile import summarize

HERE = Path(__file__).resolve().parent
SETUP = HERE / "workflows_setup.py"
SMS_BASELINE = HERE / "workflows_sms.py"
SANDBOX = HERE / "workflows_sandbox.py"
DBOS_BASELINE = HERE / "workflows_dbos.py"
SQLCOUNT = HERE / "workflows_sqlcount.py"
PYSPY = Path(os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy"))  # noqa: S108
SECRET = "whsec_bench_workflows"
TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "tok_bench_workflows"
FROM_NUMBER = "+15005550006"
GOAL_PER_S = 220.0
GOAL_P99_LATE_S = 2.0
GOAL_INTAKE_P99_MS = 200.0
"""Webhook answers while the engine works at full load (issue #14 item 8)."""
TWILIO_CONCURRENCY = 10  # calflow.apps.twilio APP.concurrency
FINAL = ("succeeded", "failed", "cancelled")
SRC: Path | None = None


# -- deliveries --------------------------------------------------------------------------


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delivery(tag: str, i: int, start: datetime, email: str = "guest") -> ingest.Delivery:
    """One signed Cal.com ``BOOKING_CREATED`` for booking ``wf-<tag>-<i>`` starting at ``start``
    (attendee ``<email><i>@example.com``)."""
    data = copy.deepcopy(ingest.CAL_BODY)
    payload = data["payload"]
    payload["uid"] = uid_of(tag, i)
    payload["bookingId"] = 1_000_000 + i
    payload["startTime"] = _z(start)
    payload["endTime"] = _z(start + timedelta(minutes=30))
    payload["attendees"][0]["email"] = f"{email}{i}@example.com"
    payload["attendees"][0]["phoneNumber"] = f"+336{10_000_000 + i:08d}"
    body = json.dumps(data, separators=(",", ":")).encode()
    return ingest.Delivery(body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(), None)


def uid_of(tag: str, i: int) -> str:
    return f"wf-{tag}-{i:07d}"


def sms_workflow(
    name: str, body: str, at: dict[str, str] | None = None, email: str | None = None
) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": "sms",
        "action": "twilio.SendSms",
        "integration": "sms",
        "input": {"to": "{{ attendee.phone }}", "body": body},
    }
    if at:
        step["at"] = at
    trigger: dict[str, Any] = {"kinds": ["created"]}
    if email:
        trigger["attendee_email"] = email
    return {"name": name, "trigger": trigger, "steps": [step]}


# -- processes ---------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLOW_")}
    env["CALFLOW_ALLOW_PRIVATE"] = "127.0.0.1,localhost"  # the sandbox and receivers
    if SRC is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]


def _ready_http(url: str) -> Callable[[Proc], bool]:
    def check(_: Proc) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _ready_log(text: str) -> Callable[[Proc], bool]:
    return lambda proc: text in proc.tail()


@contextmanager
def process(
    name: str, cmd: list[str], env: dict[str, str], ready: Callable[[Proc], bool]
) -> Iterator[Proc]:
    """Start ``cmd`` (output to a temporary file), wait until ``ready``; stop it on exit."""
    with tempfile.TemporaryFile() as log:
        popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        proc = Proc(name, popen, log)
        try:
            deadline = time.monotonic() + 90
            while not ready(proc):
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{proc.tail()}")
                time.sleep(0.1)
            yield proc
        finally:
            popen.terminate()
            try:
                popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)
            if popen.returncode not in (0, -15, 130):
                print(f"{name} exited {popen.returncode}:\n{proc.tail()}", file=sys.stderr)


def calflow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "calflow.cli.main", *args]


STOCK_SANDBOX = False  # --stock-sandbox: `calflow sandbox` without bench/workflows_sandbox.py


@contextmanager
def sandbox() -> Iterator[tuple[Proc, str]]:
    """The Twilio sandbox in its own process (by default through the TLS-context shim)."""
    port = ingest.free_port()
    opts = ["--port", str(port), "--seed", "0", "--rate-limit", "0", "--smtp-port", "0"]
    opts += ["--twilio-account-sid", TWILIO_SID, "--twilio-auth-token", TWILIO_TOKEN]
    cmd = calflow_cmd("sandbox", *opts) if STOCK_SANDBOX else [sys.executable, str(SANDBOX), *opts]
    root = f"http://127.0.0.1:{port}"
    with process("sandbox", cmd, child_env(), _ready_http(f"{root}/_sandbox/state")) as proc:
        yield proc, root


def sandbox_messages(root: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{root}/_sandbox/twilio/messages", timeout=120)
    resp.raise_for_status()
    found: list[dict[str, Any]] = resp.json()
    return found


def setup(env: dict[str, str], root: str, *workflows: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "secret": SECRET,
        "twilio": {"base_url": f"{root}/twilio", "account_sid": TWILIO_SID,
                   "auth_token": TWILIO_TOKEN, "from": FROM_NUMBER},
        "workflows": list(workflows),
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(SETUP)],
        env={**env, "WORKFLOWS_SETUP": json.dumps(spec)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"setup failed: {out.stderr.decode(errors='replace')[-3000:]}")
    ids: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return ids


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# -- databases ---------------------------------------------------------------------------


class Db:
    """Read-only queries on calflow's tables (SQLite file or PostgreSQL database)."""

    def __init__(self, sqlite_path: Path | None = None, dsn: str | None = None) -> None:
        self.sqlite_path, self.dsn = sqlite_path, dsn
        self._conn: Any = None

    def conn(self) -> Any:
        if self._conn is None:
            if self.dsn:
                self._conn = psycopg.connect(self.dsn, autocommit=True)
            else:
                assert self.sqlite_path is not None
                self._conn = sqlite3.connect(self.sqlite_path, timeout=30)
        return self._conn

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.conn().execute(sql).fetchall())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_status(self) -> Counter[str]:
        return Counter(dict(self.rows("SELECT status, count(*) FROM runs GROUP BY status")))

    def finished(self) -> int:
        return sum(v for k, v in self.run_status().items() if k in FINAL)


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of a stored timestamp (SQLite text is UTC, naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def dbos_counts(sqlite_path: Path | None, dsn: str | None) -> dict[str, Any]:
    """Rows per table of DBOS's system database, and workflows by name and status."""
    out: dict[str, Any] = {}
    if dsn:
        conn: Any = psycopg.connect(dsn, autocommit=True)
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dbos'"
        ).fetchall()]  # fmt: skip
        prefix = "dbos."
    else:
        assert sqlite_path is not None
        if not sqlite_path.exists():
            return out
        conn = sqlite3.connect(sqlite_path, timeout=30)
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).fetchall()]  # fmt: skip
        prefix = ""
    try:
        for table in sorted(tables):
            # table names from the catalog, not from input
            sql = "SELECT count(*) FROM " + prefix + '"' + table.replace('"', "") + '"'  # noqa: S608
            out[table] = int(conn.execute(sql).fetchone()[0])
        if "workflow_status" in tables:
            sql = f"SELECT name, status, count(*) FROM {prefix}workflow_status GROUP BY 1, 2"  # noqa: S608
            out["workflows"] = {f"{n}:{s}": c for n, s, c in conn.execute(sql).fetchall()}
    finally:
        conn.close()
    return out


def dbos_status(sqlite_path: Path | None, dsn: str | None) -> dict[str, int]:
    """DBOS workflows by status (ENQUEUED / PENDING / SUCCESS…)."""
    try:
        if dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT status, count(*) FROM dbos.workflow_status GROUP BY status"
                ).fetchall()
        else:
            assert sqlite_path is not None
            with contextlib.closing(sqlite3.connect(sqlite_path, timeout=5)) as conn:
                rows = conn.execute(
                    "SELECT status, count(*) FROM workflow_status GROUP BY status"
                ).fetchall()
    except (sqlite3.Error, psycopg.Error):
        return {}
    return {str(s): int(c) for s, c in rows}


@contextmanager
def pg_database(base: str, name: str) -> Iterator[str]:
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_name(dsn: str | None) -> str | None:
    return dsn.rsplit("/", 1)[1] if dsn else None


def pg_stats(dsn: str) -> dict[str, int]:
    """Cumulative transactions and row changes of the database (``pg_stat_database``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_fetched, blks_read + blks_hit, sessions FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    keys = ("commits", "rollbacks", "inserted", "updated", "deleted", "fetched", "blocks",
            "sessions")  # fmt: skip
    return dict(zip(keys, (int(v) for v in row), strict=True))


# -- CPU ---------------------------------------------------------------------------------


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database``.

    The machine is shared (other test suites use the same server), so only the backends
    of the benchmark's own database count; the server's shared processes (WAL writer,
    checkpointer) are left out.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    marker = f" {database} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not cmdline.startswith(b"postgres:") or marker not in cmdline:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def postgres_cpu_s(database: str, since: dict[int, float] | None = None) -> float:
    """CPU seconds of ``database``'s backends (since ``since``, per backend)."""
    now = postgres_cpu(database)
    since = since or {}
    return sum(v - since.get(pid, 0.0) for pid, v in now.items())


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


class CpuMeter:
    """CPU seconds of named processes (and PostgreSQL, and the machine) between two marks."""

    def __init__(self, procs: list[Proc], pg_database: str | None) -> None:
        self.procs, self.pg = procs, pg_database
        self.start: dict[str, float] = {}
        self.pg_start: dict[int, float] = {}

    def _now(self) -> dict[str, float]:
        out = {}
        for p in self.procs:
            with contextlib.suppress(OSError):
                out[p.name] = sum(ingest._proc_cpu_s(p.pid))
        if self.pg:
            out["postgres"] = postgres_cpu_s(self.pg, self.pg_start)
        busy, total = machine_cpu()
        out["machine_busy"], out["machine_total"] = busy, total
        out["bench_client"] = time.process_time()
        return out

    def mark(self) -> None:
        if self.pg:
            self.pg_start = postgres_cpu(self.pg)
        self.start = self._now()

    def since(self) -> dict[str, float]:
        end = self._now()
        out = {k: end[k] - self.start.get(k, 0.0) for k in end}
        if self.pg:
            out["postgres"] = end["postgres"]  # already per backend since the mark
        return out


def cpu_figures(cpu: dict[str, float], n: int) -> dict[str, Any]:
    machine_total = cpu.pop("machine_total")
    busy = cpu.pop("machine_busy")
    per = {k: round(v / n * 1000, 3) for k, v in cpu.items()}
    measured = sum(cpu.values())
    return {
        "cpu_ms_per_event": per,
        "cpu_ms_per_event_all_measured": round(measured / n * 1000, 3),
        "machine_busy_share": round(busy / machine_total, 3) if machine_total else None,
        # CPU the machine spent on processes other than the measured ones (other jobs on
        # a shared machine; when high, wall-clock rates are low for reasons not ours)
        "others_cpu_share": round(max(0.0, busy - measured) / machine_total, 3)
        if machine_total
        else None,
    }


# -- profiling ---------------------------------------------------------------------------


@contextmanager
def profiling(
    procs: list[Proc], out_dir: Path | None, tag: str, gil: bool = True
) -> Iterator[dict[str, Any]]:
    """py-spy on each process for the duration of the block; summaries into the dict.

    ``gil``: only samples of the thread holding the GIL (where the process's Python CPU
    goes; py-spy's idle detection counts threads blocked in psycopg's socket wait or in
    SQLite as active, so without ``--gil`` the samples mix CPU and waiting).
    """
    found: dict[str, Any] = {}
    if out_dir is None:
        yield found
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for p in procs:
        raw = out_dir / f"{tag}-{p.name}.raw"
        cmd = [str(PYSPY), "record", "-p", str(p.pid), "-r", "200", "-f", "raw", "-o", str(raw)]
        cmd += ["--nonblocking", "-t", "--nolineno", *(["--gil"] if gil else [])]
        spies.append((p.name, raw, subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)))  # fmt: skip
    time.sleep(1.0)  # py-spy attaches
    try:
        yield found
    finally:
        for name, raw, spy in spies:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            found[name] = {"raw": str(raw), **summarize(raw)} if raw.exists() else {"raw": None}


# -- figures -----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``inf`` stays ``inf``), rounded to ms."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    v = ordered[rank - 1]
    return v if math.isinf(v) else round(v, 3)


def drive(port: int, deliveries: list[ingest.Delivery], path: str, concurrency: int,
          rate: float | None) -> dict[str, Any]:  # fmt: skip
    """POST every delivery; ``t0`` (epoch), wall time, statuses, latencies."""
    reqs = ingest.requests_for(deliveries, port, path)
    originals: list[int | None] = [None] * len(deliveries)
    t0 = time.time()
    statuses, latencies, _, wall, errors = asyncio.run(
        ingest._drive(port, reqs, originals, concurrency, rate)
    )
    accepted = sum(1 for s in statuses if s == 200)
    ok = sorted(lat for lat, s in zip(latencies, statuses, strict=True) if s == 200)
    return {
        "t0": t0,
        "t_end": t0 + wall,
        "sent": len(deliveries),
        "accepted": accepted,
        "errors": dict(Counter(str(s) for s in statuses if s != 200)),
        "error_kinds": dict(errors),
        "wall_s": round(wall, 3),
        "per_s": round(accepted / wall, 1) if wall else None,
        "concurrency": concurrency,
        "p50_ms": ingest._pct(ok, 0.5),
        "p99_ms": ingest._pct(ok, 0.99),
    }


def wait_finished(
    db: Db, want: int, timeout_s: float, stall_s: float, poll_s: float = 0.2
) -> tuple[int, bool]:
    """Poll until ``want`` runs are finished; gives up after ``timeout_s`` or no progress."""
    deadline = time.monotonic() + timeout_s
    last, last_change = -1, time.monotonic()
    while True:
        done = db.finished()
        if done >= want:
            return done, True
        now = time.monotonic()
        if done != last:
            last, last_change = done, now
        if now > deadline or now - last_change > stall_s:
            return done, False
        time.sleep(poll_s)


def run_timings(db: Db, prefix: str) -> list[tuple[str, str, float, float | None, float]]:
    """``(booking uid, status, created, finished, event received)`` of the runs of ``prefix``."""
    rows = db.rows(
        "SELECT r.booking_uid, r.status, r.created_at, r.finished_at, e.received_at"
        " FROM runs r JOIN events e ON e.id = r.event_id"
    )
    out = []
    for uid, status, created, finished, received in rows:
        if str(uid).startswith(prefix):
            c, f, e = epoch(created), epoch(finished), epoch(received)
            assert c is not None and e is not None
            out.append((str(uid), str(status), c, f, e))
    return out


def throughput_figures(
    n: int, load: dict[str, Any], runs: list[tuple[str, str, float, float | None, float]]
) -> dict[str, Any]:
    t0 = load["t0"]
    finished = sorted(f for _, s, _, f, _ in runs if f is not None and s in FINAL)
    status = Counter(s for _, s, _, _, _ in runs)
    out: dict[str, Any] = {"runs": len(runs), "runs_by_status": dict(status)}
    if not finished:
        return out | {"per_s": 0.0}
    last = finished[-1]
    first_created = min(c for _, _, c, _, _ in runs)
    lags = [f - e for _, s, _, f, e in runs if f is not None and s in FINAL]
    e2e = len(finished) / (last - t0)
    out |= {
        "e2e_s": round(last - t0, 3),
        "per_s": round(e2e, 1),
        "intake_per_s": load["per_s"],
        "processing_per_s": round(len(finished) / (last - first_created), 1),
        "done_when_intake_ended": sum(1 for f in finished if f <= load["t_end"]),
        "lag_p50_s": pct(lags, 0.5),
        "lag_p99_s": pct(lags, 0.99),
        "lag_max_s": pct(lags, 1.0),
    }
    if len(finished) >= 10:
        lo, hi = finished[len(finished) // 10], finished[len(finished) * 9 // 10 - 1]
        count = len(finished) * 9 // 10 - len(finished) // 10 - 1
        out["steady_10_90_per_s"] = round(count / (hi - lo), 1) if hi > lo else None
    return out


def sms_check(root: str, prefix: str, expected: int) -> dict[str, Any]:
    """Messages at the sandbox whose body names a booking of ``prefix``: each exactly once?"""
    bodies = Counter(
        m["body"].split(" ", 1)[1]
        for m in sandbox_messages(root)
        if " " in m["body"] and m["body"].split(" ", 1)[1].startswith(prefix)
    )
    return {
        "sms_recorded": sum(bodies.values()),
        "sms_distinct": len(bodies),
        "sms_duplicated": sum(1 for c in bodies.values() if c > 1),
        "sms_expected": expected,
        "sms_exactly_once": len(bodies) == expected and all(c == 1 for c in bodies.values()),
    }


# -- part 1: throughput ------------------------------------------------------------------


@dataclass
class Backend:
    """One database (SQLite home or a fresh PostgreSQL database) and its environment."""

    kind: str
    home: Path
    env: dict[str, str]
    db: Db
    dsn: str | None = None
    dbos_sqlite: Path | None = None
    stack: ExitStack = field(default_factory=ExitStack)


@contextmanager
def backend(kind: str, tag: str, args: argparse.Namespace) -> Iterator[Backend]:
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"calflow-wf-{tag}-")))
        if kind == "sqlite":
            env = child_env(CALFLOW_HOME=str(home))
            db = Db(sqlite_path=home / "calflow.db")
            b = Backend(kind, home, env, db, dbos_sqlite=home / "dbos.sqlite")
        else:
            name = f"calflow_bench_{tag}_{os.getpid()}"
            dsn = stack.enter_context(pg_database(args.pg, name))
            env = child_env(CALFLOW_HOME=str(home), CALFLOW_DATABASE_URL=dsn,
                            CALFLOW_SECRET_KEYS=fernet_key())  # fmt: skip
            b = Backend(kind, home, env, Db(dsn=dsn), dsn=dsn)
        stack.callback(b.db.close)
        yield b


@contextmanager
def engine_processes(
    b: Backend, workers: int, port: int, args: argparse.Namespace, sql_tag: str | None = None
) -> Iterator[tuple[list[Proc], list[Proc]]]:
    """(all processes, the engine ones): ``serve`` alone, or a receiver and ``workers``.

    With ``--sql-count DIR`` and a ``sql_tag``, the engine processes run through
    ``bench/workflows_sqlcount.py`` (their counters go to ``DIR/<tag>-<name>.json``).
    """
    with ExitStack() as stack:
        health = _ready_http(f"http://127.0.0.1:{port}/healthz")
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]

        def engine(name: str, *argv: str) -> tuple[list[str], dict[str, str]]:
            if args.sql_count is None or sql_tag is None:
                return calflow_cmd(*argv), b.env
            args.sql_count.mkdir(parents=True, exist_ok=True)
            out = args.sql_count.resolve() / f"{sql_tag}-{name}.json"
            return [sys.executable, str(SQLCOUNT), *argv], {**b.env, "WF_SQLCOUNT_OUT": str(out)}

        if workers == 0:
            cmd, env = engine("serve", *serve)
            p = stack.enter_context(process("serve", cmd, env, health))
            yield [p], [p]
            return
        receiver = stack.enter_context(
            process("receiver", calflow_cmd(*serve, "--no-worker"), b.env, health)
        )
        engines = []
        for w in range(1, workers + 1):
            cmd, env = engine(f"worker{w}", "worker", "--id", f"bench-w{w}", *args.worker_arg)
            engines.append(stack.enter_context(
                process(f"worker{w}", cmd, env, _ready_log("running"))
            ))  # fmt: skip
        yield [receiver, *engines], engines


def sql_counters(engines: list[Proc], args: argparse.Namespace, tag: str) -> list[dict[str, Any]]:
    """Ask each engine for its SQL counters (and reset them); ``[]`` without --sql-count."""
    if args.sql_count is None:
        return []
    out = []
    for p in engines:
        path = args.sql_count.resolve() / f"{tag}-{p.name}.json"
        path.unlink(missing_ok=True)
        p.popen.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        out.append(json.loads(path.read_text()) if path.exists() else {})
    return out


def sql_figures(dumps: list[dict[str, Any]], n: int, top: int = 15) -> dict[str, Any]:
    """Statements and commits per event, by origin, summed over the engine processes."""
    stmts: dict[tuple[str, str], list[float]] = {}
    commits: dict[str, list[float]] = {}
    for d in dumps:
        for row in d.get("statements", []):
            e = stmts.setdefault((row["origin"], row["sql"]), [0, 0.0])
            e[0] += row["count"]
            e[1] += row["s"]
        for row in d.get("commits", []):
            e = commits.setdefault(row["origin"], [0, 0.0])
            e[0] += row["count"]
            e[1] += row["s"]
    by_pkg: dict[str, list[float]] = {}
    for (origin, _), (c, t) in stmts.items():
        e = by_pkg.setdefault(origin.split("/", 1)[0], [0, 0.0])
        e[0] += c
        e[1] += t
    ranked = sorted(stmts.items(), key=lambda kv: -kv[1][1])[:top]
    connects: dict[str, int] = {}
    for d in dumps:
        for row in d.get("connects", []):
            connects[row["origin"]] = connects.get(row["origin"], 0) + row["count"]
    return {
        "connections_opened_per_event": {o: round(c / n, 3) for o, c in connects.items()},
        "statements_per_event": round(sum(c for c, _ in stmts.values()) / n, 2),
        "execute_ms_per_event": round(sum(t for _, t in stmts.values()) / n * 1000, 3),
        "commits_per_event": round(sum(c for c, _ in commits.values()) / n, 2),
        "commit_ms_per_event": round(sum(t for _, t in commits.values()) / n * 1000, 3),
        "by_package": {
            k: {"statements": round(c / n, 2), "ms": round(t / n * 1000, 3)}
            for k, (c, t) in by_pkg.items()
        },
        "top_statements": [
            {
                "origin": o,
                "sql": q,
                "per_event": round(c / n, 2),
                "ms_per_event": round(t / n * 1e3, 3),
            }
            for (o, q), (c, t) in ranked
        ],
        "commits_by_origin": [
            {"origin": o, "per_event": round(c / n, 2), "ms_per_event": round(t / n * 1e3, 3)}
            for o, (c, t) in sorted(commits.items(), key=lambda kv: -kv[1][1])[:top]
        ],
    }


LEVELS = {
    "sqlite": ("sqlite", 0),
    "sqlite_w1": ("sqlite", 1),
    "sqlite_w2": ("sqlite", 2),
    "pg1": ("pg", 1),
    "pg2": ("pg", 2),
}


def bench_throughput(level: str, args: argparse.Namespace) -> dict[str, Any]:
    kind, workers = LEVELS[level]
    tag = f"t{level}"
    out: dict[str, Any] = {"level": level, "backend": kind, "workers": workers}
    out["machine_before"] = ingest.machine_state()
    start = datetime.now(UTC) + timedelta(days=7)
    warm = [delivery(f"warm{level}", i, start) for i in range(args.warmup)]
    events = [delivery(tag, i, start) for i in range(args.n)]
    workflow = sms_workflow("sms", "hi {{ booking.uid }}")
    with ExitStack() as stack:
        sb, root = stack.enter_context(sandbox())
        b = stack.enter_context(backend(kind, level, args))
        ids = setup(b.env, root, workflow)
        port = ingest.free_port()
        procs, engines = stack.enter_context(engine_processes(b, workers, port, args, level))
        path = f"/hooks/{ids['cal_com']}"
        if warm:
            drive(port, warm, path, args.concurrency, None)
            done, ok = wait_finished(b.db, len(warm), 120, 60)
            if not ok:
                raise RuntimeError(f"{level}: warm-up runs did not finish ({done}/{len(warm)})")
        time.sleep(1.0)
        idle: dict[str, Any] = {}
        if b.dsn:  # what the engine does when there is nothing to do
            s0 = pg_stats(b.dsn)
            time.sleep(2.0)
            s1 = pg_stats(b.dsn)
            idle = {"pg_commits_per_s_idle": round((s1["commits"] - s0["commits"]) / 2.0, 1)}
        sql_counters(engines, args, level)  # from zero
        meter = CpuMeter([*procs, sb], db_name(b.dsn))
        stats0, t_stats0 = (pg_stats(b.dsn) if b.dsn else None), time.monotonic()
        with profiling(engines, args.profile, level, args.profile_mode == "gil") as prof:
            meter.mark()
            load = drive(port, events, path, args.concurrency, args.rate)
            done, ok = wait_finished(
                b.db, len(warm) + args.n, args.drain_timeout, args.stall_timeout
            )
            cpu = meter.since()
        sql = sql_counters(engines, args, level)
        runs = run_timings(b.db, f"wf-{tag}-")
        out |= throughput_figures(args.n, load, runs)
        out["all_finished"] = ok
        out["intake"] = {k: v for k, v in load.items() if k not in ("t0", "t_end")}
        out |= cpu_figures(cpu, args.n)
        if b.dsn and stats0 is not None:
            time.sleep(1.5)  # backends report their counters when idle
            stats1 = pg_stats(b.dsn)
            out["pg_per_event"] = {k: round((stats1[k] - stats0[k]) / args.n, 2) for k in stats0}
            out["pg_per_event"] |= idle
            idle_commits = idle["pg_commits_per_s_idle"] * (time.monotonic() - t_stats0)
            out["pg_per_event"]["commits_net_of_idle"] = round(
                (stats1["commits"] - stats0["commits"] - idle_commits) / args.n, 2
            )
        out |= sms_check(root, f"wf-{tag}-", args.n)
        dbos = dbos_counts(b.dbos_sqlite, b.dsn)
        total_events = args.n + len(warm)
        out["dbos_rows_per_event"] = {
            k: round(v / total_events, 2) for k, v in dbos.items() if isinstance(v, int) and v
        }
        out["dbos_workflows"] = dbos.get("workflows", {})
        if prof:
            out["profile"] = prof
        if sql:
            out["sql"] = sql_figures(sql, args.n)
    out["machine_after"] = ingest.machine_state()
    return out


# -- baselines ---------------------------------------------------------------------------


def bench_intake(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The same deliveries into ``serve --no-worker`` (no workflow engine): the inbox alone."""
    start = datetime.now(UTC) + timedelta(days=7)
    warm = [delivery(f"bwarm{kind}", i, start) for i in range(args.warmup)]
    events = [delivery(f"b{kind}", i, start) for i in range(args.n)]
    with ExitStack() as stack:
        b = stack.enter_context(backend(kind, f"intake{kind}", args))
        ids = setup(b.env, "http://127.0.0.1:9", sms_workflow("sms", "hi {{ booking.uid }}"))
        port = ingest.free_port()
        cmd = calflow_cmd("serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker")
        proc = stack.enter_context(
            process("receiver", cmd, b.env, _ready_http(f"http://127.0.0.1:{port}/healthz"))
        )
        path = f"/hooks/{ids['cal_com']}"
        if warm:
            drive(port, warm, path, args.concurrency, None)
        meter = CpuMeter([proc], db_name(b.dsn))
        meter.mark()
        load = drive(port, events, path, args.concurrency, args.rate)
        cpu = meter.since()
        stored = b.db.rows("SELECT count(*) FROM events")[0][0]
    out = {k: v for k, v in load.items() if k not in ("t0", "t_end")}
    out["events_stored"] = int(stored)
    out |= cpu_figures(cpu, args.n)
    return out


def bench_sms(args: argparse.Namespace) -> dict[str, Any]:
    """N SendSms through calflow's action layer alone (no engine), at the app's concurrency."""
    with ExitStack() as stack:
        sb, root = stack.enter_context(sandbox())
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calflow-wf-sms-")))
        env = child_env(CALFLOW_HOME=str(home))
        setup(env, root)
        sandbox_cpu0 = sum(ingest._proc_cpu_s(sb.pid))
        busy0, total0 = machine_cpu()
        cmd = [sys.executable, str(SMS_BASELINE), "--n", str(args.n)]
        cmd += ["--concurrency", str(TWILIO_CONCURRENCY), "--tag", "sms"]
        done = subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"sms baseline failed: {done.stderr.decode()[-3000:]}")
        busy1, total1 = machine_cpu()
        sandbox_cpu = sum(ingest._proc_cpu_s(sb.pid)) - sandbox_cpu0
        out: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        out["sandbox_cpu_ms_per_call"] = round(sandbox_cpu / args.n * 1000, 3)
        out["machine_busy_share"] = round((busy1 - busy0) / (total1 - total0), 3)
        recorded = [m for m in sandbox_messages(root) if m["body"].startswith("base sms-")]
        out["sms_recorded"] = len(recorded)
    return out


def bench_dbos(kind: str, steps: int, args: argparse.Namespace) -> dict[str, Any]:
    """Bare DBOS (``bench/workflows_dbos.py``): workflows of ``steps`` no-op steps."""
    n = min(args.n, args.dbos_n)
    with ExitStack() as stack:
        if kind == "sqlite":
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calflow-wf-dbos-")))
            url = f"sqlite:///{home / 'dbos.sqlite'}"
        else:
            name = f"calflow_bench_dbos{steps}_{os.getpid()}"
            url = stack.enter_context(pg_database(args.pg, name))
        cmd = [sys.executable, str(DBOS_BASELINE), "--db", url, "--n", str(n)]
        cmd += ["--steps", str(steps), "--tag", f"dbos-{kind}-{steps}"]
        cmd += ["--concurrency", str(args.dbos_concurrency)]
        busy0, total0 = machine_cpu()
        seen: dict[int, float] = {}  # the child's backends exit with it: sample while it runs
        with tempfile.TemporaryFile() as log:
            child = subprocess.Popen(cmd, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
            while child.poll() is None:
                if kind == "pg":
                    seen |= postgres_cpu(db_name(url) or "")
                time.sleep(0.5)
            log.seek(0)
            text = log.read().decode(errors="replace")
        if child.returncode != 0:
            raise RuntimeError(f"dbos baseline failed: {text[-3000:]}")
        busy1, total1 = machine_cpu()
        out: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
        if kind == "pg":
            # lower bound: the last samples miss up to 0.5 s of each backend's CPU
            out["postgres_cpu_ms_per_workflow"] = round(sum(seen.values()) / n * 1000, 3)
        out["machine_busy_share"] = round((busy1 - busy0) / (total1 - total0), 3)
    return out


# -- part 2: reminder precision ----------------------------------------------------------


async def _sleep_precision(dues: list[float]) -> list[float]:
    """Lateness of ``asyncio.sleep`` until each due time, all waiting at once."""
    late: list[float] = []

    async def one(due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.time()))
        late.append(time.time() - due)

    await asyncio.gather(*(one(d) for d in dues))
    return late


def bench_reminders(level: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    kind, workers = LEVELS[level]
    lead = args.reminder_lead if args.reminder_lead is not None else 20.0 + 7.0 * n / 1000
    window, offset = args.reminder_window, 60.0
    tag = f"r{level}{n}"
    out: dict[str, Any] = {"level": level, "reminders": n, "lead_s": lead, "window_s": window,
                           "before_start_s": offset}  # fmt: skip
    out["machine_before"] = ingest.machine_state()
    workflow = sms_workflow("reminder", "rem {{ booking.uid }}", {"before_start": f"{offset:g}s"})
    with ExitStack() as stack:
        sb, root = stack.enter_context(sandbox())
        b = stack.enter_context(backend(kind, tag, args))
        ids = setup(b.env, root, workflow)
        port = ingest.free_port()
        procs, engines = stack.enter_context(engine_processes(b, workers, port, args))
        path = f"/hooks/{ids['cal_com']}"
        first_due = time.time() + lead
        # start times in whole milliseconds (what the payload carries); due = start - offset
        starts = [
            datetime.fromtimestamp(round(first_due + offset + window * i / n, 3), UTC)
            for i in range(n)
        ]
        due_of = {uid_of(tag, i): starts[i].timestamp() - offset for i in range(n)}
        events = [delivery(tag, i, starts[i]) for i in range(n)]
        meter = CpuMeter([*procs, sb], db_name(b.dsn))
        meter.mark()
        load = drive(port, events, path, args.concurrency, None)
        out["intake"] = {k: v for k, v in load.items() if k not in ("t0", "t_end")}
        timeline: list[dict[str, Any]] = []
        deadline = max(due_of.values()) + args.reminder_drain
        with profiling(
            engines, args.profile, level + "-reminders", args.profile_mode == "gil"
        ) as prof:
            while True:
                now = time.time()
                status = b.db.run_status()
                sent = b.db.rows(
                    "SELECT count(*) FROM run_steps WHERE status = 'succeeded'"
                )[0][0]  # fmt: skip
                timeline.append({
                    "t_rel_first_due_s": round(now - first_due, 1),
                    "runs": dict(status),
                    "sms_steps_succeeded": int(sent),
                    "dbos": dbos_status(b.dbos_sqlite, b.dsn),
                })  # fmt: skip
                if sum(v for k, v in status.items() if k in FINAL) >= n or now > deadline:
                    break
                time.sleep(max(0.0, 1.0 - (time.time() - now)))
        cpu = meter.since()
        steps = b.db.rows(
            "SELECT r.booking_uid, s.status, s.port, s.started_at, s.attempt"
            " FROM run_steps s JOIN runs r ON r.id = s.run_id"
        )
        statuses = b.db.run_status()
        messages = sandbox_messages(root)
        if prof:
            out["profile"] = prof
    out |= reminder_figures(n, due_of, steps, statuses, messages, timeline, first_due)
    out |= cpu_figures(cpu, n)
    out["timeline"] = timeline
    # baseline: the same due times, slept on by plain asyncio tasks in this process
    base_first = time.time() + 2.0
    base_dues = [base_first + 3.0 * i / n for i in range(n)]
    base = asyncio.run(_sleep_precision(base_dues))
    out["baseline_asyncio_sleep"] = {
        "tasks": n,
        "spread_s": 3.0,
        "p50_s": pct(base, 0.5),
        "p99_s": pct(base, 0.99),
        "max_s": pct(base, 1.0),
    }
    out["machine_after"] = ingest.machine_state()
    return out


def bench_blocking(level: str, args: argparse.Namespace) -> dict[str, Any]:
    """Do waiting runs hold the runs queue? ``--blocking`` reminders due in an hour, then
    immediate SMS events: how long do the immediate ones take?"""
    kind, workers = LEVELS[level]
    tag, now_tag = f"h{level}", f"h{level}now"
    n_now = 5
    reminder = sms_workflow("reminder", "rem {{ booking.uid }}", {"before_start": "60s"},
                            "guest*@example.com")  # fmt: skip
    immediate = sms_workflow("sms", "hi {{ booking.uid }}", None, "now*@example.com")
    out: dict[str, Any] = {"level": level, "waiting_reminders": args.blocking,
                           "immediate_events": n_now}  # fmt: skip
    with ExitStack() as stack:
        _, root = stack.enter_context(sandbox())
        b = stack.enter_context(backend(kind, tag, args))
        ids = setup(b.env, root, reminder, immediate)
        port = ingest.free_port()
        stack.enter_context(engine_processes(b, workers, port, args))
        path = f"/hooks/{ids['cal_com']}"
        start = datetime.now(UTC) + timedelta(hours=1)
        far = [delivery(tag, i, start) for i in range(args.blocking)]
        drive(port, far, path, args.concurrency, None)
        deadline, last, stable = time.monotonic() + 30, -1, 0
        while time.monotonic() < deadline and stable < 3:  # until the waiting count settles
            waiting = b.db.run_status().get("waiting", 0)
            stable, last = (stable + 1, last) if waiting == last else (0, waiting)
            time.sleep(0.5)
        out["before"] = {"runs": dict(b.db.run_status()),
                         "dbos": dbos_status(b.dbos_sqlite, b.dsn)}  # fmt: skip
        now_events = [delivery(now_tag, i, start, email="now") for i in range(n_now)]
        load = drive(port, now_events, path, args.concurrency, None)
        deadline = time.monotonic() + args.blocking_wait
        while time.monotonic() < deadline:
            runs = run_timings(b.db, f"wf-{now_tag}-")
            if len(runs) == n_now and all(r[1] in FINAL for r in runs):
                break
            time.sleep(0.25)
        runs = run_timings(b.db, f"wf-{now_tag}-")
        out["after"] = {"runs": dict(b.db.run_status()),
                        "dbos": dbos_status(b.dbos_sqlite, b.dsn)}  # fmt: skip
    lags = [f - load["t0"] for _, s, _, f, _ in runs if f is not None and s in FINAL]
    out |= {
        "immediate_finished": len(lags),
        "immediate_lag_max_s": pct(lags, 1.0),
        "waited_s": args.blocking_wait,
        "blocked": len(lags) < n_now,
    }
    return out


def reminder_figures(
    n: int,
    due_of: dict[str, float],
    steps: list[tuple[Any, ...]],
    statuses: Counter[str],
    messages: list[dict[str, Any]],
    timeline: list[dict[str, Any]],
    first_due: float,
) -> dict[str, Any]:
    sent_at: dict[str, float] = {}
    attempts: Counter[str] = Counter()
    step_status: Counter[str] = Counter()
    for uid, status, _port, started, _attempt in steps:
        uid = str(uid)
        if uid not in due_of:
            continue
        step_status[str(status)] += 1
        if status == "succeeded":
            attempts[uid] += 1
            at = epoch(started)
            if at is not None:
                sent_at[uid] = min(sent_at.get(uid, at), at)
    late = [sent_at[u] - due_of[u] if u in sent_at else math.inf for u in due_of]
    early = sum(1 for v in late if v < 0)
    at_sandbox: Counter[str] = Counter()
    sandbox_late: list[float] = []
    for m in messages:
        uid = m["body"].split(" ", 1)[-1]
        if uid in due_of:
            at_sandbox[uid] += 1
            created = datetime.strptime(m["date_created"], "%a, %d %b %Y %H:%M:%S %z")
            sandbox_late.append(created.timestamp() - due_of[uid])
    waiting_at_first_due = next(
        (t for t in timeline if t["t_rel_first_due_s"] >= 0), timeline[-1] if timeline else {}
    )
    all_waiting = next(
        (t["t_rel_first_due_s"] for t in timeline if t["runs"].get("waiting", 0) >= n), None
    )
    return {
        "runs_by_status": dict(statuses),
        "steps_by_status": dict(step_status),
        "sent": len(sent_at),
        "not_sent": n - len(sent_at),
        "sent_early": early,
        "late_p50_s": pct(late, 0.5),
        "late_p99_s": pct(late, 0.99),
        "late_max_s": pct(late, 1.0),
        "late_over_2s": sum(1 for v in late if v > GOAL_P99_LATE_S),
        "late_p99_of_sent_s": pct([v for v in late if not math.isinf(v)], 0.99),
        "sms_steps_succeeded_twice": sum(1 for c in attempts.values() if c > 1),
        "sandbox_messages": sum(at_sandbox.values()),
        "sandbox_duplicates": sum(1 for c in at_sandbox.values() if c > 1),
        "sandbox_late_max_s": pct(sandbox_late, 1.0),  # whole seconds at the sandbox
        "no_duplicates": not any(c > 1 for c in at_sandbox.values())
        and not any(c > 1 for c in attempts.values()),
        "all_sent": len(sent_at) == n and len(at_sandbox) == n,
        "state_at_first_due": waiting_at_first_due,
        "all_waiting_at_s_rel_first_due": all_waiting,
        "first_due_epoch": round(first_due, 3),
    }


# -- output ------------------------------------------------------------------------------


def engine_cpu(lv: dict[str, Any]) -> float:
    """CPU ms per event of the engine processes (``serve`` with its receiver, or workers)."""
    per = lv.get("cpu_ms_per_event", {})
    return float(sum(v for k, v in per.items() if k == "serve" or k.startswith("worker")))


def dbos_steps(args: argparse.Namespace) -> list[int]:
    return [int(k) for k in str(args.dbos_steps).split(",") if k.strip()]


def ratios(levels: list[dict[str, Any]], baselines: dict[str, Any]) -> None:
    """Each level against the baselines of its backend (all measured in this run)."""
    sms = baselines.get("sms")
    for lv in levels:
        intake = baselines.get(f"intake_{lv['backend']}")
        # bare DBOS with as many steps as the level's runs checkpointed (else the most)
        bare = {b["steps"]: b for k, b in baselines.items()
                if k.startswith(f"dbos_{lv['backend']}_")}  # fmt: skip
        steps = round(lv.get("dbos_rows_per_event", {}).get("operation_outputs", 0))
        dbos = bare.get(steps) or (bare[max(bare)] if bare else None)
        if not sms or not intake or not lv.get("per_s"):
            continue
        ceiling = min(intake["per_s"], sms["per_s"])
        base_cpu = (
            intake["cpu_ms_per_event_all_measured"]
            - intake["cpu_ms_per_event"].get("bench_client", 0)
            + sms["client_cpu_ms_per_call"]
            + sms["sandbox_cpu_ms_per_call"]
        )
        measured = lv["cpu_ms_per_event_all_measured"] - lv["cpu_ms_per_event"]["bench_client"]
        ratio: dict[str, Any] = {
            "baseline_ceiling_per_s": ceiling,
            "e2e_to_ceiling": round(lv["per_s"] / ceiling, 3),
            "e2e_to_intake_alone": round(lv["per_s"] / intake["per_s"], 3),
            "e2e_to_sms_alone": round(lv["per_s"] / sms["per_s"], 3),
            "baseline_cpu_ms_per_event": round(base_cpu, 3),
            "cpu_ms_per_event": round(measured, 3),
            "cpu_ms_per_event_over_baseline": round(measured - base_cpu, 3),
            "cpu_to_baseline": round(measured / base_cpu, 2),
        }
        if dbos:
            # the engine's own CPU per run (serve minus what its receiver costs alone)
            receiver = intake["cpu_ms_per_event"].get("receiver", 0) if lv["workers"] == 0 else 0
            own = engine_cpu(lv) - receiver
            ratio |= {
                "bare_dbos_steps": dbos["steps"],
                "bare_dbos_per_s": dbos["per_s"],
                "e2e_to_bare_dbos": round(lv["per_s"] / dbos["per_s"], 3),
                "engine_cpu_ms_per_run": round(own, 3),
                "bare_dbos_cpu_ms_per_workflow": dbos["cpu_ms_per_workflow"],
                "dbos_share_of_engine_cpu": round(dbos["cpu_ms_per_workflow"] / own, 3)
                if own
                else None,
            }
        lv["ratio"] = ratio


def table(levels: list[dict[str, Any]], baselines: dict[str, Any]) -> list[str]:
    rows = [
        "| level | events | e2e events/s | intake/s (answer p99) | processing/s (10-90 %) "
        "| lag p50 / p99 s "
        "| CPU ms/event (all) | engine CPU ms/event | SMS once | ratio to ceiling "
        "| other jobs' CPU share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, b in baselines.items():
        if name.startswith("intake"):
            rows.append(
                f"| baseline {name} (serve --no-worker) | {b['accepted']:,} | "
                f"| {b['per_s']:,.0f} (p99 {b.get('p99_ms')} ms) "
                f"| | | {b['cpu_ms_per_event_all_measured']} | | | | {b['others_cpu_share']} |"
            )
        elif name == "sms":
            rows.append(
                f"| baseline SendSms via Runner, c={b['concurrency']} | {b['calls']:,} | "
                f"| | {b['per_s']:,.0f} | | "
                f"{b['client_cpu_ms_per_call'] + b['sandbox_cpu_ms_per_call']:.3f} | | | | |"
            )
        elif name.startswith("dbos_") and "steps" in b:
            pg = b.get("postgres_cpu_ms_per_workflow", 0)
            rows.append(
                f"| baseline {name}: bare DBOS, {b['steps']} no-op steps | {b['workflows']:,} "
                f"| {b['per_s']:,.1f} | | | | {b['cpu_ms_per_workflow'] + pg:.3f} "
                f"| {b['cpu_ms_per_workflow']} | | | |"
            )
    for lv in levels:
        ratio = lv.get("ratio", {}).get("e2e_to_ceiling", "")
        rows.append(
            f"| {lv['level']} | {lv['runs']:,} | {lv.get('per_s', 0):,.1f} "
            f"| {lv.get('intake_per_s', 0):,.0f} (p99 {(lv.get('intake') or {}).get('p99_ms')} ms) "
            f"| {lv.get('processing_per_s', '')} "
            f"({lv.get('steady_10_90_per_s', '')}) | {lv.get('lag_p50_s')} / {lv.get('lag_p99_s')} "
            f"| {lv.get('cpu_ms_per_event_all_measured')} | {engine_cpu(lv):.2f} "
            f"| {lv.get('sms_exactly_once')} | {ratio} | {lv.get('others_cpu_share')} |"
        )
    return rows


def verdicts(figures: dict[str, Any]) -> list[str]:
    lines = []
    levels = {lv["level"]: lv for lv in figures["throughput"]}
    # one instance on one machine: `calflow serve` alone, or with its child workers
    singles = [levels[k] for k in ("sqlite", "sqlite_w1", "sqlite_w2") if k in levels]
    one = max(singles, key=lambda lv: lv.get("per_s", 0)) if singles else levels.get("pg1")
    for lv in singles:
        if lv is not one:
            lines.append(f"one instance, {lv['level']}: {lv.get('per_s', 0):,.1f} events/s")
    if one:
        ok = one.get("per_s", 0) >= GOAL_PER_S and one.get("sms_exactly_once")
        lines.append(
            f"throughput, one instance ({one['level']}): {one.get('per_s', 0):,.1f} events/s end "
            f"to end (goal >= {GOAL_PER_S:.0f}/s): {'met' if ok else 'NOT met'}"
            + (f"; {one['ratio']['e2e_to_ceiling']:.2f}x the no-engine ceiling of "
               f"{one['ratio']['baseline_ceiling_per_s']:,.0f}/s" if "ratio" in one else "")
        )  # fmt: skip
    for lv in figures["throughput"]:
        r = lv.get("ratio", {})
        if "engine_cpu_ms_per_run" in r:
            lines.append(
                f"{lv['level']}: engine CPU {r['engine_cpu_ms_per_run']} ms per run; bare DBOS "
                f"{r['bare_dbos_cpu_ms_per_workflow']} ms per workflow of the same queue and "
                f"{r['bare_dbos_steps']} no-op steps ({r['dbos_share_of_engine_cpu']:.0%} of it), "
                f"{r['bare_dbos_per_s']:,.1f} workflows/s; all processes "
                f"{r['cpu_ms_per_event']} ms CPU per event vs {r['baseline_cpu_ms_per_event']} ms "
                f"without the engine ({r['cpu_to_baseline']}x); other jobs used "
                f"{lv['others_cpu_share']:.0%} of the machine"
            )
    for lv in figures["throughput"]:  # intake and engine together, vs intake alone
        intake = lv.get("intake") or {}
        alone = figures.get("baselines", {}).get(f"intake_{lv['backend']}") or {}
        if intake.get("p99_ms") is None:
            continue
        ok = intake["p99_ms"] <= GOAL_INTAKE_P99_MS
        lines.append(
            f"webhooks while the engine works ({lv['level']}, c={intake.get('concurrency')}): "
            f"p50 {intake['p50_ms']} ms, p99 {intake['p99_ms']} ms; intake alone p99 "
            f"{alone.get('p99_ms')} ms (goal p99 <= {GOAL_INTAKE_P99_MS:.0f} ms): "
            f"{'met' if ok else 'NOT met'}"
        )
    if "pg1" in levels and "pg2" in levels:
        a, b = levels["pg1"].get("per_s", 0), levels["pg2"].get("per_s", 0)
        lines.append(
            f"second worker on PostgreSQL: {a:,.1f} -> {b:,.1f} events/s ({b / a if a else 0:.2f}x)"
            f" (goal: more): {'met' if b > a * 1.05 else 'NOT met'}"
        )
    for r in figures["reminders"]:
        once = r["no_duplicates"] and r["all_sent"]
        ok = r["late_p99_s"] is not None and r["late_p99_s"] <= GOAL_P99_LATE_S and once
        base = r["baseline_asyncio_sleep"]
        lines.append(
            f"reminders ({r['level']}, {r['reminders']:,} due within {r['window_s']:g} s): "
            f"sent {r['sent']:,}/{r['reminders']:,}, lateness p50 {r['late_p50_s']} s, "
            f"p99 {r['late_p99_s']} s, max {r['late_max_s']} s (inf: never sent; p99 of those "
            f"sent {r['late_p99_of_sent_s']} s); duplicates: "
            f"{'none' if r['no_duplicates'] else 'YES'}; baseline asyncio.sleep p99 "
            f"{base['p99_s']} s (goal p99 <= {GOAL_P99_LATE_S:g} s, each sent exactly once): "
            f"{'met' if ok else 'NOT met'}"
        )
        first = r["state_at_first_due"]
        lines.append(
            f"  at the first due time: runs {first.get('runs')}, DBOS {first.get('dbos')}; "
            f"not sent {r['not_sent']:,} (steps {r['steps_by_status']}); other jobs used "
            f"{r['others_cpu_share']:.0%} of the machine"
        )
    for h in figures.get("blocking", []):
        lines.append(
            f"head of line ({h['level']}): {h['waiting_reminders']} runs waiting for reminders due "
            f"in an hour (runs {h['before']['runs']}, DBOS {h['before']['dbos']}); then "
            f"{h['immediate_events']} immediate SMS events: {h['immediate_finished']} finished "
            f"within {h['waited_s']:g} s"
            + (" -- BLOCKED: waiting runs hold the runs queue's slots" if h["blocked"] else "")
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="timed events per level")
    parser.add_argument("--warmup", type=int, default=50, help="untimed events first")
    parser.add_argument("--levels", default="sqlite,sqlite_w2,pg1,pg2",
                        help="sqlite, sqlite_w1, sqlite_w2, pg1, pg2 ('' none)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP connections")
    parser.add_argument("--rate", type=float, default=None, help="POST at this rate (events/s)")
    parser.add_argument("--drain-timeout", type=float, default=240, help="s to wait for runs")
    parser.add_argument("--stall-timeout", type=float, default=60, help="s without progress")
    parser.add_argument(
        "--reminders", default="10000,30", help="reminder counts, one run each ('' or 0: none)"
    )
    parser.add_argument("--reminder-levels", default="sqlite")
    parser.add_argument(
        "--reminder-lead", type=float, default=None, help="s to the first due (20 + 7 per 1,000)"
    )
    parser.add_argument("--reminder-window", type=float, default=60, help="s all fall due in")
    parser.add_argument("--reminder-drain", type=float, default=180, help="s after last due")
    parser.add_argument(
        "--blocking", type=int, default=40, help="head-of-line check: reminders (0: skip)"
    )
    parser.add_argument("--blocking-wait", type=float, default=30, help="s for the immediate runs")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--dbos-steps", default="0,3", help="steps per bare-DBOS workflow, one run each ('': none)"
    )
    parser.add_argument("--dbos-n", type=int, default=1000, help="bare-DBOS workflows (<= --n)")
    parser.add_argument(
        "--dbos-concurrency",
        type=int,
        default=0,
        help="bare-DBOS queue worker_concurrency (0: none, as calflow's runs queue)",
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--worker-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `calflow worker` (repeatable)")  # fmt: skip
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the engine processes; raw files and summaries")  # fmt: skip
    parser.add_argument(
        "--profile-mode",
        choices=("gil", "all"),
        default="gil",
        help="py-spy samples: the GIL holder only (Python CPU), or every non-idle thread",
    )
    parser.add_argument(
        "--stock-sandbox", action="store_true", help="run `calflow sandbox` without the shim"
    )
    parser.add_argument(
        "--sql-count",
        type=Path,
        default=None,
        metavar="DIR",
        help="count SQL by origin in the engines (bench/workflows_sqlcount.py; slows them)",
    )
    parser.add_argument("--src", type=Path, default=None, help="run calflow from this tree")
    parser.add_argument(
        "--rev", default=None, help="run calflow from this git revision (`git archive` of src/)"
    )
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE")
    args = parser.parse_args()
    global SRC, STOCK_SANDBOX
    STOCK_SANDBOX = args.stock_sandbox
    with ExitStack() as stack:
        if args.rev:  # the commit now: the branch may move while the benchmark runs
            args.rev_commit = git_out("rev-parse", "--verify", f"{args.rev}^{{commit}}")
            args.src = archive(args.rev_commit, stack)
        SRC = args.src.resolve() if args.src else None
        return run(args)


def archive(rev: str, stack: ExitStack) -> Path:
    """``src/`` of ``rev`` extracted into a temporary directory (removed on exit)."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="calflow-wf-src-")))
    repo = HERE.parent
    tar = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "src"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=tar.stdout, check=True)
    return tmp / "src"


def git_out(*cmd: str) -> str:
    done = subprocess.run(["git", "-C", str(HERE.parent), *cmd], capture_output=True, check=False)
    return done.stdout.decode().strip()


def source_info(args: argparse.Namespace) -> dict[str, Any]:
    """Which calflow ran: the revision (and whether src/ had uncommitted changes)."""
    if args.rev:
        return {"rev": args.rev, "commit": args.rev_commit, "tree": "git archive"}
    if args.src:
        return {"tree": str(args.src)}
    dirty = git_out("status", "--porcelain", "--", "src")
    return {"commit": git_out("rev-parse", "HEAD"), "tree": "work tree",
            "src_uncommitted": dirty.splitlines() if dirty else []}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    ingest.SRC = SRC
    t_start = time.monotonic()
    levels = [lv for lv in args.levels.split(",") if lv]
    baselines: dict[str, Any] = {}
    if not args.no_baseline and levels:
        for kind in sorted({LEVELS[lv][0] for lv in levels}):
            baselines[f"intake_{kind}"] = bench_intake(kind, args)
            print(f"baseline intake_{kind}: {json.dumps(baselines[f'intake_{kind}'])}",
                  file=sys.stderr)  # fmt: skip
        baselines["sms"] = bench_sms(args)
        print(f"baseline sms: {json.dumps(baselines['sms'])}", file=sys.stderr)
        for kind in sorted({LEVELS[lv][0] for lv in levels}):
            for steps in dbos_steps(args):
                baselines[f"dbos_{kind}_{steps}"] = found = bench_dbos(kind, steps, args)
                print(f"baseline dbos_{kind}_{steps}: {json.dumps(found)}", file=sys.stderr)
            by_steps = {
                b["steps"]: b for k, b in baselines.items() if k.startswith(f"dbos_{kind}_")
            }
            if 0 in by_steps and len(by_steps) > 1:
                k = max(by_steps)
                fixed, full = by_steps[0]["cpu_ms_per_workflow"], by_steps[k]["cpu_ms_per_workflow"]
                split = {"workflow_ms": fixed, "per_step_ms": round((full - fixed) / k, 3)}
                baselines[f"dbos_cost_{kind}"] = split
    throughput = []
    for lv in levels:
        throughput.append(bench_throughput(lv, args))
        brief = {k: v for k, v in throughput[-1].items() if k != "profile"}
        print(f"[{lv}] {json.dumps(brief)}", file=sys.stderr)
    ratios(throughput, baselines)
    blocking = []
    if args.blocking:
        for lv in [lv for lv in args.reminder_levels.split(",") if lv]:
            blocking.append(bench_blocking(lv, args))
            print(f"[blocking {lv}] {json.dumps(blocking[-1])}", file=sys.stderr)
    reminders = []
    sizes = [int(n) for n in str(args.reminders).split(",") if n.strip() and int(n)]
    for n in sizes:
        for lv in [lv for lv in args.reminder_levels.split(",") if lv]:
            reminders.append(bench_reminders(lv, n, args))
            brief = {k: v for k, v in reminders[-1].items() if k not in ("timeline", "profile")}
            print(f"[reminders {lv}] {json.dumps(brief)}", file=sys.stderr)
    figures = {
        "n": args.n,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "dbos_steps": dbos_steps(args),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "calflow": source_info(args),
        "sandbox": "stock" if STOCK_SANDBOX else "bench/workflows_sandbox.py (TLS context cached)",
        "baselines": baselines,
        "throughput": throughput,
        "reminders": reminders,
        "blocking": blocking,
        "total_s": round(time.monotonic() - t_start, 1),
    }
    text = json.dumps(figures, indent=2, default=str)
    if args.json not in (None, "-"):
        Path(args.json).write_text(text + "\n")
    print(text)
    human = args.json != "-"
    if human:
        print("\n".join(table(throughput, baselines)))
    for line in verdicts(figures):
        print(line, file=sys.stdout if human else sys.stderr)
    ok = all(lv.get("sms_exactly_once") for lv in throughput)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
