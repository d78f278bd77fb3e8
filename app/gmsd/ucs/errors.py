"""The errors of the customer profile routes: UCS status codes (PROFILES.md §3.0).

This half of `/genesys/1/cs` follows UCS: an unknown customer is a 404 (the services half
answers 400 NotFoundException), and the exception names are the §0 package's
`NotFoundException`, `BadRequestException`, `ConflictException` and `ForbiddenException`.
"""

from __future__ import annotations

from gmsd.errors import CS_EXCEPTIONS, GmsdError

_CS = CS_EXCEPTIONS


class ProfileNotFound(GmsdError):
    """An unknown customer, extension, identification key, extension record or interaction."""

    status = 404
    cs_exception = _CS + "NotFoundException"


class ProfileRefused(GmsdError):
    """Bad input: a missing parameter, a value of the wrong type, a schema violation."""

    status = 400
    cs_exception = _CS + "BadRequestException"


class ProfileConflict(GmsdError):
    """A name already used, a uniqueness violated, a schema object still in use."""

    status = 409
    cs_exception = _CS + "ConflictException"


class ProfilesForbidden(GmsdError):
    """Profiles are disabled, or the profile schema is empty."""

    status = 403
    cs_exception = _CS + "ForbiddenException"
