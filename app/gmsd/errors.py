"""Typed errors raised by the domain and store layers.

Each error knows its HTTP status on the GMS side and on the Context Services side, and the
GMS exception class name that Context Services clients expect in the `exception` field. The
handlers turn them into JSON bodies in one place (`gmsd.web.responses.error_response`).
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

# The Java package of the `exception` names Context Services (and the profile routes) answer.
CS_EXCEPTIONS = "com.genesyslab.gsg.services.contextservices.exceptions."
_CS = CS_EXCEPTIONS


class GmsdError(Exception):
    """Base of every error that becomes a documented HTTP answer."""

    status: int = 500
    cs_status: int | None = None  # None: the same as `status`
    cs_exception: str = _CS + "ContextServicesException"
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({})  # extra headers of the answer

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(GmsdError):
    """An unknown or expired service, state, task, key or configured service name.

    GMS answers 404; Context Services answers 400 with NotFoundException (documented GMS
    behaviour that clients rely on).
    """

    status = 404
    cs_status = 400
    cs_exception = _CS + "NotFoundException"


class BadRequest(GmsdError):
    """The request is well-formed HTTP but its content is not acceptable."""

    status = 400
    cs_exception = _CS + "InvalidParameterException"


class Unauthorized(GmsdError):
    """The request lacks the credentials its route needs, or they are wrong (the answer says neither)."""

    status = 401
    cs_exception = _CS + "AuthenticationException"

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message)


class Conflict(GmsdError):
    """The resource is not in a state that allows the operation (e.g. ended twice)."""

    status = 409
    cs_exception = _CS + "StateException"


class PayloadTooLarge(GmsdError):
    """A body, file or field count is over its configured limit."""

    status = 413
    cs_exception = _CS + "InvalidParameterException"


class RequestTimeout(GmsdError):
    """The request body did not arrive within `[limits] body_timeout` (a slow or stalled client).

    The connection is closed: the rest of the body may still be on its way.
    """

    status = 408
    cs_exception = _CS + "InvalidParameterException"
    headers = MappingProxyType({"connection": "close"})


class UnsupportedMediaType(GmsdError):
    """The request body has a content type the route does not read."""

    status = 415
    cs_exception = _CS + "InvalidParameterException"


class CouldNotReadJson(GmsdError):
    """Malformed JSON on the GMS side: GMS documents a 500 for it, and clients expect it."""

    status = 500
    cs_status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(f"Could not read JSON: {detail}")


class StorageUnavailable(GmsdError):
    """Redis cannot be reached within the configured timeout."""

    status = 503
    cs_exception = _CS + "StorageUnavailableException"

    def __init__(self, message: str = "storage unavailable") -> None:
        super().__init__(message)


class Overloaded(GmsdError):
    """This worker already has `[limits] max_concurrent_requests` requests in progress."""

    status = 503
    headers = MappingProxyType({"retry-after": "1"})

    def __init__(self, message: str = "too many requests in progress; retry later") -> None:
        super().__init__(message)


class NoAccessNumber(GmsdError):
    """Every access number of a resource group is reserved (the request kept nothing)."""

    status = 503

    def __init__(self, group: str) -> None:
        super().__init__(f"no access number available in resource group {group}")


class OrchestrationFailed(GmsdError):
    """The orchestration (ors) URL refused, failed or answered something that is not JSON."""

    status = 502


class OrchestrationTimeout(GmsdError):
    """The orchestration (ors) URL did not answer within the configured timeout."""

    status = 504


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the file, key and problem."""
