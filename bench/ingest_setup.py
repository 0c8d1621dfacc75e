"""Prepare a calflow home for the ingest benchmark: migrate it, add a Cal.com integration.

    CALFLOW_HOME=DIR INGEST_SECRET=S python bench/ingest_setup.py

Run as a child process with the same environment the server will get, so both see the
same home, database and key file. Prints the integration's id (the hook URL's last part).
"""

from __future__ import annotations

import os
import sys

from calflow.integrations import IntegrationStore


def main() -> int:
    secret = os.environ.get("INGEST_SECRET")
    if not secret or not os.environ.get("CALFLOW_HOME"):
        print("CALFLOW_HOME and INGEST_SECRET must be set", file=sys.stderr)
        return 2
    store = IntegrationStore.default()
    found = store.add(
        "cal_com",
        "bench",
        {"base_url": "http://cal.invalid"},
        {"api_key": "cal_live_bench", "webhook_secret": secret},
    )
    print(found.id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
