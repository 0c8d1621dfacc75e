"""What calflow adds per action: GetBooking via ``Runner.run_action`` vs a bare httpx call.

Both paths send the same Cal.com request (``GET /v2/bookings/{uid}`` with the version
header and bearer key) to the sandbox running as a real server on loopback, N times
each, interleaved in rounds so drift in the server affects both alike. The sandbox runs
in its own process (as a provider would), so the two sides do not share a GIL.

    python bench/action_overhead.py [--n 2000] [--rounds 5]

Prints per-call medians for both paths and calflow's overhead per action
(goal: under 1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from calflow.flowapp.runner import Runner
from calflow.integrations import IntegrationStore
from calflow.settings import Settings
from sandbox_process import sandbox_process


async def _bare(client: httpx.AsyncClient, url: str, key: str, n: int) -> list[float]:
    out = []
    headers = {"Authorization": f"Bearer {key}", "cal-api-version": "2024-08-13"}
    for _ in range(n):
        t0 = time.perf_counter()
        resp = await client.get(url, headers=headers)
        resp.raise_for_status()
        resp.json()
        out.append(time.perf_counter() - t0)
    return out


async def _calflow(runner: Runner, uid: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await runner.run_action("cal_com", "GetBooking", {"bookingUid": uid}, "bench")
        if result.port != "success":
            raise SystemExit(f"unexpected result: {result.to_dict()}")
        out.append(time.perf_counter() - t0)
    return out


async def _main(base: str, key: str, n: int, rounds: int, home: Path) -> dict[str, float]:
    store = IntegrationStore.default(Settings(home=home))
    store.add("cal_com", "bench", {"base_url": f"{base}/calcom"}, {"api_key": key})
    async with httpx.AsyncClient() as client:
        listing = await client.get(
            f"{base}/calcom/v2/bookings",
            headers={"Authorization": f"Bearer {key}", "cal-api-version": "2024-08-13"},
            params={"take": 1},
        )
        uid = listing.json()["data"][0]["uid"]
        url = f"{base}/calcom/v2/bookings/{uid}"
        bare: list[float] = []
        ours: list[float] = []
        async with Runner(store=store) as runner:
            await _calflow(runner, uid, 20)  # warm-up: schema compile, connections
            await _bare(client, url, key, 20)
            for _ in range(rounds):
                bare += await _bare(client, url, key, n)
                ours += await _calflow(runner, uid, n)
    b, c = statistics.median(bare), statistics.median(ours)
    return {
        "calls_per_path": len(bare),
        "bare_httpx_median_ms": round(b * 1000, 3),
        "calflow_median_ms": round(c * 1000, 3),
        "overhead_ms_per_action": round((c - b) * 1000, 3),
        "bare_httpx_mean_ms": round(statistics.fmean(bare) * 1000, 3),
        "calflow_mean_ms": round(statistics.fmean(ours) * 1000, 3),
        "ratio_calflow_to_bare": round(c / b, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="calls per path per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = "cal_live_bench"
    os.environ.pop("CALFLOW_SECRET_KEYS", None)
    os.environ["CALFLOW_ALLOW_PRIVATE"] = "127.0.0.1"  # the sandbox runs on this machine
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(key, seed=5) as base:
        figures = asyncio.run(_main(base, key, args.n, args.rounds, Path(tmp)))
    print(json.dumps(figures, indent=2))
    goal = figures["overhead_ms_per_action"] < 1.0
    print(
        f"overhead per action: {figures['overhead_ms_per_action']} ms "
        f"(goal < 1 ms: {'met' if goal else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
