"""A webhook receiver for the replay tests, run as its own process (a real server).

``python receiver.py PORT SECRET`` listens on 127.0.0.1:PORT. Every POST is checked
against ``SECRET`` in the scheme its headers name (SavvyCal ``x-savvycal-signature:
sha256=HEX``, Cal.com ``X-Cal-Signature-256`` hex) and recorded by its
``X-Calflow-Replay-Id``. Behaviour is set with ``POST /_mode`` (JSON):

- ``status``: answer every delivery with this status (default 200);
- ``fail_first``: answer the first N deliveries of each id with ``fail_status`` (503);
- ``retry_after``: a ``Retry-After`` value sent with 429/503 answers;
- ``html``: answer GET requests with an HTML page (a provider returning garbage).

``GET /_stats`` returns the counts and every record; ``POST /_reset`` clears them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
from typing import Any

STATE: dict[str, Any] = {}
MODE: dict[str, Any] = {}


def reset() -> None:
    STATE.clear()
    STATE.update(total=0, bad_signatures=0, records=[], seen={}, attempts={})


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sav = headers.get("x-savvycal-signature")
    if sav is not None:
        return sav.lower() == f"sha256={digest}"
    cal = headers.get("x-cal-signature-256")
    return cal is not None and hmac.compare_digest(cal, digest)


def handle_post(secret: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    if path == "/_mode":
        MODE.clear()
        MODE.update(json.loads(body or b"{}"))
        return 200, {"mode": MODE}
    if path == "/_reset":
        reset()
        return 200, {}
    rid = headers.get("x-calflow-replay-id", "")
    attempts = STATE["attempts"]
    attempts[rid] = attempts.get(rid, 0) + 1
    if attempts[rid] <= int(MODE.get("fail_first", 0)):
        return int(MODE.get("fail_status", 503)), {"error": "try again"}
    status = int(MODE.get("status", 200))
    if status >= 300:
        return status, {"error": "refused by the test receiver"}
    STATE["total"] += 1
    ok = verify(secret, headers, body)
    if not ok:
        STATE["bad_signatures"] += 1
    envelope = json.loads(body)
    kind = envelope.get("type") or envelope.get("triggerEvent")
    payload = envelope.get("payload") or {}
    STATE["records"].append(
        {
            "id": rid,
            "envelope_id": envelope.get("id"),
            "kind": kind,
            "object": payload.get("id") or payload.get("uid"),
            "sha256": hashlib.sha256(body).hexdigest(),
            "signature_ok": ok,
            "path": path,
        }
    )
    STATE["seen"][rid] = STATE["seen"].get(rid, 0) + 1
    return 200, {"ok": True}


def stats() -> dict[str, Any]:
    seen = STATE["seen"]
    return {
        "total": STATE["total"],
        "unique": len(seen),
        "duplicates": sum(n - 1 for n in seen.values()),
        "bad_signatures": STATE["bad_signatures"],
        "records": STATE["records"],
    }


async def serve_client(
    secret: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            extra = ""
            if method == "GET" and path == "/_stats":
                status, data = 200, stats()
            elif method == "GET" and MODE.get("html"):
                text = b"<html><head><title>502 Bad Gateway</title></head><body>oops</body></html>"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                    + str(len(text)).encode()
                    + b"\r\n\r\n"
                    + text
                )
                await writer.drain()
                continue
            elif method == "POST":
                status, data = handle_post(secret, path, headers, body)
            else:
                status, data = 404, {"error": "not found"}
            if status in (429, 503) and MODE.get("retry_after") is not None:
                extra = f"Retry-After: {MODE['retry_after']}\r\n"
            out = json.dumps(data).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(out)}\r\n\r\n".encode()
                + out
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int, secret: str) -> None:
    reset()
    server = await asyncio.start_server(
        lambda r, w: serve_client(secret, r, w), "127.0.0.1", port, limit=2**20
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
