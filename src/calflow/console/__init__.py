"""The web console: a single-page app served at ``/`` by the same process as the API.

The app is built once from ``console-src/`` (React and react-jsonschema-form) and its
output is committed here under ``static/``, so neither users nor CI need Node. It talks
only to the REST API under ``/api/v1`` with the token the user signs in with.

:func:`mount_console` adds three plain routes (left out of ``/openapi.json``): ``/``
(``index.html``, revalidated on every load), ``/assets/…`` (content-hashed file names,
cached for a year) and ``/favicon.svg``. Nothing else is claimed, so ``/api``,
``/hooks``, ``/healthz``, ``/openapi.json`` and ``/mcp`` are never shadowed.
"""

from __future__ import annotations

from calflow.console.assets import STATIC_PACKAGE, Asset, AssetStore
from calflow.console.routes import mount_console

__all__ = ["STATIC_PACKAGE", "Asset", "AssetStore", "mount_console"]
