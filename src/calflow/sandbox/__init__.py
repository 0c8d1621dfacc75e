"""Faithful in-memory simulators of the providers calflow talks to.

``create_sandbox_app(config)`` builds one ASGI app: Cal.com API v2 at ``/calcom``
and sandbox controls at ``/_sandbox``. ``server.serve`` / ``server.run_in_thread``
run it with uvicorn.
"""

from calflow.sandbox.app import SandboxHandle, Simulator, SimulatorFactory, create_sandbox_app
from calflow.sandbox.config import SandboxConfig, SandboxRuntime

__all__ = [
    "SandboxConfig",
    "SandboxHandle",
    "SandboxRuntime",
    "Simulator",
    "SimulatorFactory",
    "create_sandbox_app",
]
