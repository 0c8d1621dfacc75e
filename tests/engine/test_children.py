"""``calflow serve --workers N``: child worker processes share the work on SQLite."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from calflow.db.engine import reset_engines
from calflow.events.inbox import Inbox
from calflow.integrations import IntegrationStore
from calflow.workflows.children import CHILD_NICENESS
from e2e.sandbox_process import SandboxProcess, free_port

from .conftest import booking_event
from .test_processes import REMINDER, _runs, _setup, calflow_process, poll


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_serve_with_two_worker_processes_runs_every_event_once(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    definition = {**REMINDER, "steps": [{**REMINDER["steps"][0], "at": "immediately"}]}  # type: ignore[dict-item]
    settings = _setup(tmp_path, f"sqlite:///{tmp_path / 'calflow.db'}", sandbox, definition)
    runs = _runs(settings)
    inbox = Inbox(IntegrationStore.default(settings).engine)
    host = os.environ.get("CALFLOW_WORKER_ID") or socket.gethostname()
    port = free_port()
    with calflow_process(["serve", "--workers", "2", "--port", str(port)],
                         {"CALFLOW_HOME": str(tmp_path)}) as server:  # fmt: skip
        children = poll(lambda: ((c := _children(server.pid)) and len(c) == 2 and c) or None,
                        what="two child workers")  # fmt: skip
        # the workers yield the CPU to the server (its webhook answers come first)
        poll(lambda: all(_nice(c) == _nice(server.pid) + CHILD_NICENESS for c in children)
             or None, what="niced child workers")  # fmt: skip
        for n in range(40):
            inbox.publish(booking_event(booking_uid=f"uid-child-{n}"))
        poll(lambda: len(runs.list(status="succeeded", limit=1000)) == 40 or None,
             wait_s=60, what="40 succeeded runs")  # fmt: skip

        os.kill(children[0], signal.SIGKILL)  # a child that dies is started again
        poll(lambda: ((c := _children(server.pid)) and len(c) == 2 and children[0] not in c)
             or None, what="the killed worker to be restarted")  # fmt: skip
        for n in range(40, 50):
            inbox.publish(booking_event(booking_uid=f"uid-child-{n}"))
        poll(lambda: len(runs.list(status="succeeded", limit=1000)) == 50 or None,
             wait_s=60, what="50 succeeded runs")  # fmt: skip
        survivors = _children(server.pid)
    all_runs = runs.list(limit=1000)
    assert len(all_runs) == 50
    for run in all_runs:
        steps = runs.get(run["id"])["steps"]
        assert [(s["step"], s["status"]) for s in steps] == [("remind", "succeeded")]
    assert {run["worker"] for run in all_runs} <= {f"{host}-w1", f"{host}-w2"}
    poll(lambda: not any(_alive(p) for p in survivors) or None, wait_s=20,
         what="the children to stop with the server")  # fmt: skip
    reset_engines()
