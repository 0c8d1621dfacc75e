"""calflow: booking-platform automation.

The public names below are imported when first used (:mod:`calflow.lazy_exports`), so
``import calflow`` (and every ``calflow`` command, ``--help`` included) does not pay for
the engine's imports.

The public surface for embedding calflow in another program::

    result = await calflow.run_action("cal_com", "BookMeeting", {...}, integration="main")
    options = await calflow.fetch_options("cal_com", "event_types", integration="main")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calflow.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from calflow.errors import (
        AuthError,
        CalflowError,
        ConfigError,
        FatalProviderError,
        FieldError,
        NotFoundError,
        RateLimitError,
        RetryableError,
        ValidationError,
    )
    from calflow.flowapp.model import ActionResult, Option
    from calflow.flowapp.runner import (
        Runner,
        fetch_options,
        fetch_options_sync,
        run_action,
        run_action_sync,
    )

_WHERE = {
    **dict.fromkeys(
        ("AuthError", "CalflowError", "ConfigError", "FatalProviderError", "FieldError",
         "NotFoundError", "RateLimitError", "RetryableError", "ValidationError"),
        "calflow.errors",
    ),
    "ActionResult": "calflow.flowapp.model",
    "Option": "calflow.flowapp.model",
    **dict.fromkeys(
        ("Runner", "fetch_options", "fetch_options_sync", "run_action", "run_action_sync"),
        "calflow.flowapp.runner",
    ),
}  # fmt: skip


__getattr__ = lazy_exports(__name__, _WHERE)

__version__ = "0.1.0"

__all__ = [
    "ActionResult",
    "AuthError",
    "CalflowError",
    "ConfigError",
    "FatalProviderError",
    "FieldError",
    "NotFoundError",
    "Option",
    "RateLimitError",
    "RetryableError",
    "Runner",
    "ValidationError",
    "__version__",
    "fetch_options",
    "fetch_options_sync",
    "run_action",
    "run_action_sync",
]
