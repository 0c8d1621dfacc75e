"""``calflow sandbox`` for ``bench/workflows.py``, with httpx's TLS context made once.

    python bench/workflows_sandbox.py --port P [any `calflow sandbox` option]

The Twilio simulator moves each message through ``sent`` and ``delivered`` in a task
that opens its own ``httpx.AsyncClient`` (``calflow/sandbox/twilio/callbacks.py``,
``StatusDispatcher._progress``), even when the message has no status callback. Each
client builds a TLS context (``ssl.create_default_context`` loading the CA bundle):
~20 ms of CPU per message measured with py-spy (90 % of the sandbox's samples), which
caps the sandbox near 45 SMS/s on a 2-core machine and takes CPU from the engine being
measured. The real Twilio costs calflow nothing of the kind, so by default the
benchmark runs the sandbox through this shim: the same ``calflow sandbox`` command, but
httpx's ``create_ssl_context`` returns one cached context per argument set (nothing
else changes: the messages, their statuses and the answers are the same).
``bench/workflows.py --stock-sandbox`` runs the sandbox unpatched.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import httpx._transports.default as transports

from calflow.cli.main import main

_make = transports.create_ssl_context


@functools.lru_cache(maxsize=8)
def _cached(verify: Any, cert: Any, trust_env: bool) -> Any:
    return _make(verify=verify, cert=cert, trust_env=trust_env)


def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
    try:
        return _cached(verify, cert, trust_env)
    except TypeError:  # an unhashable argument: build it as httpx would
        return _make(verify=verify, cert=cert, trust_env=trust_env)


if __name__ == "__main__":
    transports.create_ssl_context = create_ssl_context  # type: ignore[assignment]
    sys.exit(main(["sandbox", *sys.argv[1:]]))
