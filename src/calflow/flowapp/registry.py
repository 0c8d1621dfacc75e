"""The registry of installed apps, discovered through the ``calflow.apps`` entry points."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from calflow.errors import ConfigError, NotFoundError
from calflow.flowapp.action import Action, DataFetcher
from calflow.flowapp.app import App

ENTRY_POINT_GROUP = "calflow.apps"
log = logging.getLogger(__name__)


class Registry:
    """Apps by key, with lookups that name what is missing and what exists."""

    def __init__(self, apps: Iterable[App] = ()) -> None:
        self._apps: dict[str, App] = {}
        for app in apps:
            self.add(app)

    def add(self, app: App) -> None:
        if app.key in self._apps and self._apps[app.key] is not app:
            raise ConfigError(f"two apps share the key {app.key!r}")
        self._apps[app.key] = app

    @classmethod
    def discover(cls) -> Registry:
        """Load every app registered under the ``calflow.apps`` entry-point group."""
        registry = cls()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                app = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break calflow
                log.warning("app plugin %s could not be loaded: %s", ep.value, exc)
                continue
            if not isinstance(app, App):
                log.warning("entry point %s is not a calflow App (got %r)", ep.value, type(app))
                continue
            registry.add(app)
        return registry

    @property
    def apps(self) -> list[App]:
        return [self._apps[k] for k in sorted(self._apps)]

    def app(self, key: str) -> App:
        found = self._apps.get(key) or self._apps.get(key.replace("-", "_").lower())
        if found is None:
            known = ", ".join(sorted(self._apps)) or "none installed"
            raise NotFoundError(f"unknown app {key!r} (installed: {known})")
        return found

    def action(self, app_key: str, action_key: str) -> type[Action]:
        return self.app(app_key).action(action_key)

    def fetcher(self, app_key: str, fetcher_key: str) -> type[DataFetcher]:
        return self.app(app_key).fetcher(fetcher_key)

    def catalogue(self) -> list[dict[str, Any]]:
        """Every app with its credential fields, actions (schemas, ports) and fetchers."""
        return [app.describe() for app in self.apps]

    def problems(self) -> list[str]:
        return [p for app in self.apps for p in app.problems()]


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The process-wide registry of installed apps."""
    return Registry.discover()
