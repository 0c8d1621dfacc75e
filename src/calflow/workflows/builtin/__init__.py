"""Ready-made workflows mirroring Cal.com's built-in ones (apply with ``--builtin``).

They name two integrations: ``sms`` (a Twilio integration) and ``email`` (an SMTP one).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from calflow.errors import NotFoundError
from calflow.workflows.definition import load_text


def names() -> list[str]:
    files = resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def load(name: str) -> Any:
    """One ready-made definition (``NotFoundError`` naming the others)."""
    if name not in names():
        raise NotFoundError(f"no built-in workflow {name!r} (there are: {', '.join(names())})")
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return load_text(text, f"built-in {name}")
