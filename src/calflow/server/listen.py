"""``calflow serve``'s listening socket, bound and listening before anything is printed.

uvicorn binds its own socket only once it starts serving, after the banner; a busy port
then showed up as uvicorn's error under a banner announcing the server. :func:`listen`
binds first and turns each failure into a ``ListenError`` (exit 2) naming ``host:port``
and what to do; uvicorn then serves on the socket (``Server.serve(sockets=[…])``).
"""

from __future__ import annotations

import errno
import socket

from calflow.errors import ConfigError

__all__ = ["BACKLOG", "ListenError", "listen"]

BACKLOG = 2048
"""uvicorn's default listen backlog."""


class ListenError(ConfigError):
    """The socket cannot be bound: the port is taken, privileged, or the host unknown."""

    code = "CANNOT_LISTEN"


def listen(host: str, port: int, option: str = "--port") -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free one) and listening, as
    uvicorn would bind it (IPv6 when ``host`` has a colon, else IPv4); ``ListenError``
    with the reason and the fix (``option`` is the command's option for this port) when
    it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(_why(host, port, exc, option)) from None
    return sock


def _why(host: str, port: int, exc: OSError, option: str) -> str:
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return (
            f"{where}: {host!r} is no address of this machine ({exc.strerror}); "
            "give --host an address such as 127.0.0.1 or 0.0.0.0"
        )
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: address already in use (another program, or another calflow serve, "
            f"is listening there); choose a free port with {option}, or stop the other program"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{where}: permission denied (ports below 1024 need privileges); "
            f"choose one above with {option}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is no address of this machine; use --host 127.0.0.1 or 0.0.0.0"
    return f"{where}: {exc.strerror or exc}"
