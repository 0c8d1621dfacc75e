"""calflow: booking-platform automation.

The public surface for embedding calflow in another program::

    result = await calflow.run_action("cal_com", "BookMeeting", {...}, integration="main")
    options = await calflow.fetch_options("cal_com", "event_types", integration="main")
"""

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
