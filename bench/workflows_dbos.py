"""Baseline for ``bench/workflows.py``: bare DBOS, the floor under calflow's runs.

    python bench/workflows_dbos.py --db sqlite:///DIR/dbos.sqlite --n 2000 --steps 3

No calflow code: one DBOS workflow per item, enqueued on a queue configured as calflow's
runs queue (no ``worker_concurrency`` since commit 5e0df48, polling every 0.2 s:
``--concurrency``, ``--polling``; the settings of ``calflow.workflows.engine.dbos_config``), each
running ``--steps`` checkpointed async steps that do nothing. Every workflow is
enqueued first (as the dispatcher does), then the run waits until all have finished.
What this costs per workflow is what any DBOS workflow with that many steps costs on
this machine and database, before calflow does any work of its own (its runs and
run_steps rows, templates, the HTTP call). Prints JSON on its last line: enqueue rate,
end-to-end workflows/s, this process's CPU per workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from dbos import DBOS, SetWorkflowID


@DBOS.step(name="bench.noop")
async def noop(i: int, k: int) -> int:
    return i + k


@DBOS.workflow(name="bench.flow")
async def flow(i: int, steps: int) -> int:
    total = 0
    for k in range(steps):
        total += await noop(i, k)
    return total


async def _run(
    db: str, n: int, steps: int, concurrency: int, polling: float, tag: str
) -> dict[str, object]:
    config = {
        "name": "calflow",
        "system_database_url": db,
        "application_version": "bench-dbos-1",
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    }
    await asyncio.to_thread(lambda: DBOS(config=config))  # type: ignore[arg-type]
    await asyncio.to_thread(DBOS.launch)
    queue = await DBOS.register_queue_async(
        "bench-runs", worker_concurrency=concurrency or None, polling_interval_sec=polling
    )
    try:
        # warm-up: a few workflows, untimed
        warm = []
        for i in range(10):
            with SetWorkflowID(f"{tag}-warm-{i}"):
                warm.append(await queue.enqueue_async(flow, i, steps))
        for h in warm:
            await h.get_result(polling_interval_sec=0.05)
        cpu0, t0 = time.process_time(), time.perf_counter()
        handles = []
        for i in range(n):
            with SetWorkflowID(f"{tag}-{i}"):
                handles.append(await queue.enqueue_async(flow, i, steps))
        t_enq = time.perf_counter() - t0
        for h in handles:
            await h.get_result(polling_interval_sec=0.05)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await asyncio.to_thread(DBOS.destroy)
    return {
        "workflows": n,
        "steps": steps,
        "queue_concurrency": concurrency or None,
        "queue_polling_s": polling,
        "enqueue_per_s": round(n / t_enq, 1),
        "wall_s": round(wall, 3),
        "per_s": round(n / wall, 1),
        "cpu_ms_per_workflow": round(cpu / n * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="DBOS system database URL")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=0, help="worker_concurrency, 0: none")
    parser.add_argument("--polling", type=float, default=0.2, help="queue polling interval s")
    parser.add_argument("--tag", default="dbos")
    args = parser.parse_args()
    figures = asyncio.run(
        _run(args.db, args.n, args.steps, args.concurrency, args.polling, args.tag)
    )
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
