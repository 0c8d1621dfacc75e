"""One calflow replay in a process of its own, so its time and peak RSS are its alone.

    REPLAY_TOKEN=… REPLAY_SECRET=… python bench/replay_child.py --root URL --to URL \\
        [--concurrency C] [--profile FILE]

Sets up a fresh integration store in a temporary home (not timed), then times
``run_replay`` end to end and prints one JSON object: ``elapsed_s``, ``started_at`` /
``ended_at`` (``time.time()``, to set against the receiver's), ``cpu_s`` (this
process's CPU time during the replay), the engine's ``summary``, the RSS after set-up
and the process's peak RSS (``ru_maxrss``, which counts the interpreter and every
import: the whole replay process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from calflow.integrations import IntegrationStore
from calflow.replay import ReplayOptions, run_replay
from calflow.settings import Settings


def _status_kb(field: str) -> int:
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _cpu_s() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _replay(
    root: str, to: str, token: str, secret: str, concurrency: int | None, home: Path
) -> dict[str, Any]:
    store = IntegrationStore.default(Settings(home=home))
    store.add("savvycal", "sc", {"base_url": f"{root}/savvycal"}, {"token": token})
    extra: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
    options = ReplayOptions(integration="sc", to=to, secret=secret, allow_private=True, **extra)
    rss_setup_kb = _status_kb("VmRSS")
    cpu0 = _cpu_s()
    wall0 = time.time()
    t0 = time.perf_counter()
    summary = await run_replay(options, store=store)
    elapsed = time.perf_counter() - t0
    return {
        "elapsed_s": elapsed,
        "started_at": wall0,  # time.time(), comparable with the receiver's first/last_at
        "ended_at": time.time(),
        "cpu_s": _cpu_s() - cpu0,
        "summary": summary.to_dict(),
        "concurrency": getattr(options, "concurrency", None),
        "rss_setup_mb": rss_setup_kb / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="sandbox root URL")
    parser.add_argument("--to", required=True, help="receiver webhook URL")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the engine's")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    args = parser.parse_args()
    token, secret = os.environ["REPLAY_TOKEN"], os.environ["REPLAY_SECRET"]
    with tempfile.TemporaryDirectory() as tmp:
        coro = _replay(args.root, args.to, token, secret, args.concurrency, Path(tmp))
        if args.profile is None:
            result = asyncio.run(coro)
        else:
            profiler = cProfile.Profile()
            result = profiler.runcall(asyncio.run, coro)
            profiler.dump_stats(args.profile)
    # ru_maxrss is in KiB on Linux
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["vm_hwm_mb"] = _status_kb("VmHWM") / 1024
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
