"""The tenant of a request under `/genesys/1/cs` (services and customer profiles alike): its
`ContactCenterId` header selects a keyspace of its own; absent, the default tenant's."""

from __future__ import annotations

from starlette.requests import Request

from gmsd.errors import BadRequest
from gmsd.keys import cs_space

TENANT_HEADER = "contactcenterid"  # `ContactCenterId` (header names are matched lower-case)


def tenant_space(request: Request) -> str | None:
    """The key prefix of the request's tenant; None for the default tenant; 400 for a bad one."""
    tenant = request.headers.get(TENANT_HEADER)
    if tenant is None:
        return None
    try:
        return cs_space(tenant)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
