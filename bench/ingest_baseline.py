"""The transport ceiling for the ingest benchmark: uvicorn with a bare ASGI app.

    python bench/ingest_baseline.py --port P

The same server stack as ``calflow serve`` (``uvicorn.run``, same loop and HTTP
implementation, ``log_level="warning"``), with a plain ASGI app in place of calflow's:
every ``POST`` has its body read in full and is answered 200 with a small JSON body;
no routing framework, no signature check, no parsing, no storage. ``GET /healthz``
answers 200 too, so the benchmark waits on it like on calflow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body, answer 200 ``{"ok":true}``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = bool(message.get("more_body", False))
    payload = b'{"ok":true,"bytes":%d}' % size
    headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
