"""A lean keep-alive HTTP/1.1 POST client for webhook deliveries.

httpx costs 1.5-3 ms of CPU per request under concurrency (its pool re-checks every
connection on each request), which capped replays near 300 items/s; a replay only
needs one thing: POST a body to one origin, over reused connections, and read the
status, headers and body. This does that on asyncio streams (TLS via ``ssl``) in
~0.1 ms, raising httpx's exception types so callers handle one set of errors.
Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PostResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FastPoster:
    """POSTs to one URL over at most ``max_connections`` keep-alive connections."""

    def __init__(self, url: str, *, max_connections: int, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout_s
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None

    async def _open(self) -> _Conn:
        try:
            return await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, limit=MAX_HEADER_BYTES
            )
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS: {exc}") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc

    async def post(self, body: bytes, headers: dict[str, str]) -> PostResponse:
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                response, keep = await self._exchange(conn, body, headers)
            except _StaleConnection:
                _close(conn)
                if not reused:
                    raise httpx.RemoteProtocolError(
                        "connection closed without a response"
                    ) from None
                conn = await self._open()  # the server had closed the idle connection
                try:
                    response, keep = await self._exchange(conn, body, headers)
                except _StaleConnection:
                    _close(conn)
                    raise httpx.RemoteProtocolError(
                        "connection closed without a response"
                    ) from None
                except BaseException:
                    _close(conn)
                    raise
            except BaseException:
                _close(conn)
                raise
            if keep:
                self._idle.append(conn)
            else:
                _close(conn)
            return response

    async def _exchange(
        self, conn: _Conn, body: bytes, headers: dict[str, str]
    ) -> tuple[PostResponse, bool]:
        reader, writer = conn
        lines = [f"POST {self._target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _OWN]
        lines += [f"Content-Length: {len(body)}", "", ""]
        try:
            async with asyncio.timeout(self._timeout):
                writer.write("\r\n".join(lines).encode("latin-1") + body)
                await writer.drain()
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise _StaleConnection from None
                    raise httpx.RemoteProtocolError("truncated response head") from None
                status, resp_headers = _parse_head(head)
                content = await _read_body(reader, resp_headers)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer within {self._timeout} s") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _StaleConnection from exc
        except asyncio.LimitOverrunError:
            raise httpx.RemoteProtocolError("response head too large") from None
        keep = resp_headers.get("connection", "").lower() != "close"
        return PostResponse(status, resp_headers, content), keep

    async def aclose(self) -> None:
        while self._idle:
            _close(self._idle.pop())


class _StaleConnection(Exception):
    """The connection was closed before any byte of a response arrived."""


_OWN = {"host", "content-length", "transfer-encoding", "connection"}


def _close(conn: _Conn) -> None:
    conn[1].close()


def _parse_head(head: bytes) -> tuple[int, httpx.Headers]:
    text = head.decode("latin-1").split("\r\n")
    status_line = text[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x response: {text[0][:80]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise httpx.RemoteProtocolError(f"bad status line: {text[0][:80]!r}") from None
    pairs = []
    for line in text[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            pairs.append((name.strip(), value.strip()))
    return status, httpx.Headers(pairs)


async def _read_body(reader: asyncio.StreamReader, headers: httpx.Headers) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # trailers end
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise httpx.RemoteProtocolError("response body too large")
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        if int(length) > MAX_BODY_BYTES:
            raise httpx.RemoteProtocolError("response body too large")
        return await reader.readexactly(int(length))
    if headers.get("connection", "").lower() == "close":
        return await reader.read(MAX_BODY_BYTES)
    return b""
