"""Prepare a calflow database for ``bench/workflows.py``: integrations and one workflow.

    CALFLOW_HOME=DIR [CALFLOW_DATABASE_URL=postgresql://…] [CALFLOW_SECRET_KEYS=…] \
        WORKFLOWS_SETUP='{"secret": …, "twilio": {…}, "workflows": [{…}]}' \
        python bench/workflows_setup.py

Run as a child process with the environment the server and workers will get, so all
of them see the same database and key. Migrates the database (opening the store does),
adds a Cal.com integration ``bench`` holding the webhook secret, a Twilio integration
``sms`` pointed at the sandbox, and applies the workflows given. Prints
``{"cal_com": id, "sms": id, "workflows": [id, …]}`` as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import sys

from calflow.integrations import IntegrationStore
from calflow.workflows.store import WorkflowStore


def main() -> int:
    raw = os.environ.get("WORKFLOWS_SETUP")
    if not raw or not os.environ.get("CALFLOW_HOME"):
        print("CALFLOW_HOME and WORKFLOWS_SETUP must be set", file=sys.stderr)
        return 2
    spec = json.loads(raw)
    store = IntegrationStore.default()
    cal = store.add(
        "cal_com",
        "bench",
        {"base_url": "http://cal.invalid"},
        {"api_key": "cal_live_bench", "webhook_secret": spec["secret"]},
    )
    tw = spec["twilio"]
    sms = store.add(
        "twilio",
        "sms",
        {"base_url": tw["base_url"], "account_sid": tw["account_sid"], "from_number": tw["from"]},
        {"auth_token": tw["auth_token"]},
    )
    workflows = WorkflowStore(store.engine, store.workspace_id)
    applied = [workflows.apply(wf)[0].id for wf in spec.get("workflows") or []]
    print(json.dumps({"cal_com": cal.id, "sms": sms.id, "workflows": applied}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
