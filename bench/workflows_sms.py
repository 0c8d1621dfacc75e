"""Baseline for ``bench/workflows.py``: the same SMS sent by calflow's action layer alone.

    CALFLOW_HOME=DIR python bench/workflows_sms.py --n 2000 --concurrency 10 --tag T

``DIR`` holds the Twilio integration ``sms`` (``bench/workflows_setup.py``). Sends ``n``
``twilio.SendSms`` calls through ``Runner.run_action`` (input validation, integration
lookup, the Twilio client, error mapping: what a workflow step does) with at most
``concurrency`` in flight (the Twilio app's own concurrency, which the engine also
keeps to), and no workflow engine, inbox or dispatcher. Prints JSON figures on its last
line: wall time, calls/s, ports, this process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore


async def _send(n: int, concurrency: int, tag: str) -> dict[str, object]:
    store = IntegrationStore.default()
    integration = store.get("sms")
    ports: Counter[str] = Counter()
    next_i = 0
    async with Runner(store=store) as runner:
        # warm-up (schema compile, connection): not timed
        await runner.run_action(
            "twilio", "SendSms", {"to": "+33699999999", "body": f"warm {tag}"}, integration
        )

        async def worker() -> None:
            nonlocal next_i
            while next_i < n:
                i = next_i
                next_i += 1
                data = {"to": f"+336{10_000_000 + i:08d}", "body": f"base {tag}-{i:07d}"}
                result = await runner.run_action("twilio", "SendSms", data, integration)
                ports[result.port] += 1

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "calls": n,
        "concurrency": concurrency,
        "ports": dict(ports),
        "wall_s": round(wall, 3),
        "per_s": round(n / wall, 1),
        "client_cpu_ms_per_call": round(cpu / n * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tag", default="sms")
    args = parser.parse_args()
    figures = asyncio.run(_send(args.n, args.concurrency, args.tag))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
