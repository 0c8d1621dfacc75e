"""calflow's REST API (FastAPI) under ``/api/v1``; the schema is at ``/openapi.json``.

Every request carries an API token (``Authorization: Bearer cfk_…``, made with
``calflow tokens create --workspace NAME`` or ``POST /api/v1/tokens``) and acts in
that token's workspace only: another workspace's resources answer 404, as if they
did not exist. Every error has one shape, ``{"error": {"code", "message",
"details": [{"field", "message"}]}}``; see each route module for its endpoints.
"""

from calflow.api.deps import PrincipalDep, Scope, ScopeDep, require_principal, workspace_scope
from calflow.api.mount import PREFIX, mount_api

__all__ = [
    "PREFIX",
    "PrincipalDep",
    "Scope",
    "ScopeDep",
    "mount_api",
    "require_principal",
    "workspace_scope",
]
