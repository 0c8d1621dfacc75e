"""The console's built files, read once from the package and kept in memory.

Every file under ``static/`` is loaded with its content type and a strong ETag (a
hash of its bytes); only those files can ever be served, so no request path reaches
the file system.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from threading import Lock

STATIC_PACKAGE = "calflow.console"
"""The package whose ``static/`` directory holds the built console."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
"""Explicit types: ``mimetypes`` depends on the machine (some map ``.js`` to text/plain,
which browsers refuse to run as a module)."""


@dataclass(frozen=True)
class Asset:
    """One built file: its bytes, content type and ETag."""

    path: str
    body: bytes
    content_type: str
    etag: str


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for child in node.iterdir():
        path = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, f"{path}/")
        elif child.is_file():
            yield path, child


def _content_type(path: str) -> str | None:
    dot = path.rfind(".")
    return CONTENT_TYPES.get(path[dot:].lower()) if dot >= 0 else None


class AssetStore:
    """The files of ``<package>/static``, loaded on first use."""

    def __init__(self, package: str = STATIC_PACKAGE) -> None:
        self.package = package
        self._files: dict[str, Asset] | None = None
        self._lock = Lock()

    def _load(self) -> dict[str, Asset]:
        files: dict[str, Asset] = {}
        root = resources.files(self.package).joinpath("static")
        if not root.is_dir():
            return files
        for path, node in _walk(root, ""):
            content_type = _content_type(path)
            if content_type is None:
                continue  # only known kinds of file are served
            body = node.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path] = Asset(path, body, content_type, etag)
        return files

    @property
    def files(self) -> dict[str, Asset]:
        if self._files is None:
            with self._lock:
                if self._files is None:
                    self._files = self._load()
        return self._files

    def get(self, path: str) -> Asset | None:
        """The file at ``path`` (relative to ``static/``), or None."""
        return self.files.get(path)
