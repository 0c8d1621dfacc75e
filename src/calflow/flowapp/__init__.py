"""The FlowApp framework: apps declare actions, fetchers and credentials; calflow runs them."""

from calflow.flowapp.action import Action, DataFetcher
from calflow.flowapp.app import App
from calflow.flowapp.context import ActionContext, BookingChange, BookingSink
from calflow.flowapp.http import ProviderClient, ProviderResponse, RetryPolicy
from calflow.flowapp.model import (
    CONFLICT,
    ERROR,
    NOT_FOUND,
    SUCCESS,
    ActionResult,
    AuthMode,
    CredentialField,
    Option,
    OutputPort,
)
from calflow.flowapp.registry import Registry, default_registry
from calflow.flowapp.schema import InputSchema

__all__ = [
    "CONFLICT",
    "ERROR",
    "NOT_FOUND",
    "SUCCESS",
    "Action",
    "ActionContext",
    "ActionResult",
    "App",
    "AuthMode",
    "BookingChange",
    "BookingSink",
    "CredentialField",
    "DataFetcher",
    "InputSchema",
    "Option",
    "OutputPort",
    "ProviderClient",
    "ProviderResponse",
    "Registry",
    "RetryPolicy",
    "default_registry",
]
