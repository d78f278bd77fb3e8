"""HTTP Basic authentication, as GMS does it: one username and password for everything, which a
configured service may replace with its own.

Off unless credentials are given. They come from the environment (`GMSD_AUTH_USERNAME` and
`GMSD_AUTH_PASSWORD`) and/or a credentials file (`GMSD_AUTH_FILE`, or `file` in the `[auth]`
section of the configuration), never from the configuration itself:

    username = "gmsd"            # the global pair (or from the environment: not both)
    password = "…"

    [services.callback]          # a configured service with a pair of its own
    username = "callback-app"
    password = "…"

What each request needs is decided in one place (`Authenticator`), after routing: `/genesys/1/cs…`,
the console's `/console/…` and `/metrics` (when `[auth] metrics = "protected"`) take the global
pair; `/genesys/1/service…` takes the pair of the configured service its `{name}` names (create)
or its service id belongs to (one HGET, only when some service has a pair of its own), else the
global pair. `/healthz`, `/readyz`, `/openapi.json` and `/docs` stay open. The expected
`Authorization` values are computed once at start-up and compared in constant time; credentials
are never logged nor put in an answer.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from starlette.responses import Response
from starlette.types import Scope

from gmsd.config import Config
from gmsd.errors import ConfigError, Unauthorized
from gmsd.keys import is_service_id
from gmsd.web.paths import API_PREFIXES, CONSOLE_PREFIX, GMS_PREFIX, METRICS, STORAGE_PREFIX
from gmsd.web.responses import error_response

USERNAME = "GMSD_AUTH_USERNAME"
PASSWORD = "GMSD_AUTH_PASSWORD"
FILE = "GMSD_AUTH_FILE"
CHALLENGE = 'Basic realm="gmsd"'

# The `{name}` of this template is a configured service's name for POST (create), a service id else.
_NAMED = GMS_PREFIX + "/{name}"
_SERVICE_PREFIXES = (GMS_PREFIX + "/", STORAGE_PREFIX + "/")  # routes that can name a service instance
_AUTHORIZATION = b"authorization"


class _Pair(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class _CredentialsFile(msgspec.Struct, forbid_unknown_fields=True):
    username: str | None = None
    password: str | None = None
    services: dict[str, _Pair] = msgspec.field(default_factory=dict)


Tokens = tuple[bytes, ...]  # the accepted Basic tokens of one pair


def basic_tokens(username: str, password: str) -> Tokens:
    """What a client may send after `Basic ` for this pair: the pair in UTF-8, and in ISO-8859-1
    when that differs (RFC 7617 leaves the charset open unless the server names one; curl and
    browsers send UTF-8, python-requests sends Latin-1)."""
    pair = f"{username}:{password}"
    tokens = [base64.b64encode(pair.encode())]
    try:
        latin = base64.b64encode(pair.encode("latin-1"))
    except UnicodeEncodeError:
        return tuple(tokens)
    if latin != tokens[0]:
        tokens.append(latin)
    return tuple(tokens)


@dataclass(frozen=True)
class Credentials:
    """The expected Basic tokens: the global pair's, and those of services with a pair of their own."""

    default: Tokens
    services: Mapping[str, Tokens] = field(default_factory=dict)


def _checked(where: str, username: str, password: str) -> Tokens:
    # Messages name the place, never the value.
    if not username or ":" in username or not username.isprintable():
        raise ConfigError(f"{where}: the username must be printable, not empty, without `:`")
    if not password or not password.isprintable():
        raise ConfigError(f"{where}: the password must be printable and not empty")
    return basic_tokens(username, password)


def _read(path: str) -> _CredentialsFile:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the credentials file: {exc.strerror}") from None
    try:
        return msgspec.toml.decode(data, type=_CredentialsFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None  # names the key (`$.services.x.password`), not the value
    except msgspec.DecodeError:
        raise ConfigError(f"{path}: not a valid TOML credentials file") from None  # the parser may quote it


def load_credentials(config: Config, environ: Mapping[str, str]) -> Credentials | None:
    """The credentials from the environment and the credentials file; None: authentication is off.

    Raises ConfigError for half a pair, a global pair given twice, pairs of services that are not
    configured, or pairs of services without a global pair.
    """
    path = environ.get(FILE) or config.auth.file
    found = _read(path) if path else _CredentialsFile()
    where = path or "the credentials file"
    if (found.username is None) != (found.password is None):
        raise ConfigError(f"{where}: `username` and `password` go together")
    env_user, env_password = environ.get(USERNAME) or None, environ.get(PASSWORD) or None
    if (env_user is None) != (env_password is None):
        raise ConfigError(f"{USERNAME} and {PASSWORD} go together: set both or neither")
    if env_user is not None and found.username is not None:
        raise ConfigError(f"the global credentials are given twice ({USERNAME} and {where}): keep one")
    if env_user is not None and env_password is not None:
        default = _checked(f"{USERNAME}/{PASSWORD}", env_user, env_password)
    elif found.username is not None and found.password is not None:
        default = _checked(where, found.username, found.password)
    elif found.services:
        raise ConfigError(f"{where}: services with credentials of their own need global ones too")
    elif path:
        raise ConfigError(f"{where}: no credentials in it")
    else:
        return None
    services = {}
    for name, pair in found.services.items():
        if name not in config.services:
            raise ConfigError(f"{where}: services.{name}: not a service of {config.source}")
        services[name] = _checked(f"{where}: services.{name}", pair.username, pair.password)
    return Credentials(default, services)


# The configured name of a service instance (None: no such instance); given by the composition
# root, so that authentication needs no knowledge of where services are stored.
ServiceName = Callable[[str], Awaitable[str | None]]


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            return bytes(value)
    return None


def _accepts(authorization: bytes, tokens: Tokens) -> bool:
    """Whether a sent `Authorization` value is `Basic` with one of `tokens` (each compared in
    constant time)."""
    scheme, _, token = authorization.partition(b" ")
    if scheme.lower() != b"basic":
        return False
    token = token.strip()
    matches = [hmac.compare_digest(token, expected) for expected in tokens]
    return any(matches)


class Authenticator:
    """Decides, after routing, whether a request carries the credentials its resource needs."""

    # `Authorization` values found to carry the global pair: a client sends the same value on
    # every request, so it is decided once, then looked up (the dictionary hashes with a
    # per-process random key: the lookup tells an attacker nothing about the pair). Only
    # accepted values are kept, and only this many: wrong guesses cost the full check each time.
    _ACCEPTED_MAX = 64

    def __init__(self, credentials: Credentials, protect_metrics: bool, service_name: ServiceName) -> None:
        self.credentials = credentials
        self.protect_metrics = protect_metrics
        self.service_name = service_name
        # Read in place by each GlobalPairGuard, filled only by `decide_global`.
        self.accepted_global: set[bytes] = set()

    def protects(self, template: str) -> bool:
        """Whether requests to the route with this path template need credentials."""
        if template == METRICS:
            return self.protect_metrics
        return template.startswith((*API_PREFIXES, CONSOLE_PREFIX + "/"))

    def _global_pair_only(self, template: str) -> bool:
        return not self.credentials.services or not template.startswith(_SERVICE_PREFIXES)

    async def _expected(self, scope: Scope, template: str) -> Tokens:
        credentials = self.credentials
        params = scope["path_params"]
        if template == _NAMED and scope["method"] == "POST":
            return credentials.services.get(params["name"], credentials.default)
        # `/genesys/1/storage/{id}…` with a service id reaches that service's own storage: it takes
        # the service's pair, as the Service API's routes of the same service do.
        service_id = params.get("id", params.get("area", params.get("name", "")))
        if not is_service_id(service_id):
            return credentials.default  # names no service: the handler answers 404
        name = await self.service_name(service_id)
        return credentials.services.get(name, credentials.default) if name else credentials.default

    def guard_of(self, template: str) -> Callable[[Scope, str], Awaitable[Response | None]]:
        """The check of the route with this path template (`GlobalPairGuard` for a route that
        takes the global pair only, else this authenticator)."""
        return GlobalPairGuard(self) if self._global_pair_only(template) else self

    async def __call__(self, scope: Scope, template: str) -> Response | None:
        """None if the request may go on, else the 401 to answer."""
        sent = _authorization(scope)
        if self._global_pair_only(template):
            return self.decide_global(sent, scope)
        if sent is not None and _accepts(sent, await self._expected(scope, template)):
            return None
        return _refusal(scope)

    def decide_global(self, sent: bytes | None, scope: Scope) -> Response | None:
        """For a route that takes the global pair only: None if `sent` (the request's
        `Authorization` value) carries it, else the 401 to answer."""
        if sent is not None:
            if sent in self.accepted_global:
                return None
            if _accepts(sent, self.credentials.default):
                if len(self.accepted_global) < self._ACCEPTED_MAX:
                    self.accepted_global.add(sent)
                return None
        return _refusal(scope)


def _refusal(scope: Scope) -> Response:
    return error_response(Unauthorized(), scope["path"], {"www-authenticate": CHALLENGE})


class GlobalPairGuard:
    """The check of a route that takes the global pair only: an `Authorization` value accepted
    before is looked up in place; anything else is decided by the `Authenticator`."""

    __slots__ = ("accepted", "authenticator")

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.accepted = authenticator.accepted_global

    async def __call__(self, scope: Scope, template: str) -> Response | None:
        """None if the request may go on, else the 401 to answer."""
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                if type(value) is bytes and value in self.accepted:
                    return None
                return self.authenticator.decide_global(bytes(value), scope)
        return self.authenticator.decide_global(None, scope)
