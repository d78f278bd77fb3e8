"""The TOML configuration file, decoded once at start-up into msgspec Structs.

Layout (every section optional; see docs/deploy.md for the reference):

    [limits]            body_bytes, file_bytes, fields, key_bytes, header_bytes, header_timeout,
                        body_timeout, body_min_rate, body_rate_window, keep_alive_timeout,
                        max_concurrent_requests, large_value_bytes, large_reads, large_read_wait
    [redis]             timeout (seconds, connect and command)
    [orchestration]     timeout (seconds for calls to ors services)
    [context_services]  default_ttl (GMS units: 30s, 10m, 12h, 7d, 2w, 6M, 5y), expiration_by_service_type,
                        auto_complete_enabled, auto_complete_after, auto_complete_sweep_interval, export_dir
    [auth]              file (credentials, see `gmsd.web.auth`), metrics ("open" or "protected")
    [cors]              allowed_origins, allowed_headers, allowed_methods, allow_credentials, max_age
    [services.<name>]   _type, _service, _ttl, and parameters that override request ones
    [resources.<group>] numbers, allocation, locking, booking_expiration_timeout (access numbers)
    [profiles]          enabled, [[profiles.attributes]] name, type, length, mandatory, default
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from gmsd.errors import ConfigError

# The built-in services and the `_` options each accepts in its table besides SERVICE_OPTIONS
# (values there override same-named request parameters).
_ACCESS_OPTIONS = ("_resource_group", "_provide_code", "_access_code_length", "_booking_expiration_timeout")
BUILTIN_OPTIONS: dict[str, tuple[str, ...]] = {
    "storage": (),
    "request-interaction": _ACCESS_OPTIONS,
    "request-access": _ACCESS_OPTIONS,
    "match-interaction": ("_return_user_data", "_return_data", "_return_multiple_matches", "_delete_service"),
}
BUILTIN_SERVICES = frozenset(BUILTIN_OPTIONS)

# Digits and whitespace spelled out: the same pattern must mean the same in the OpenAPI document
# (JSON Schema regexes are ECMA 262, where `\d` and `\s` are narrower than Python's).
_SPACE = "[ \t\n\r\f\v]*"
_DURATION = re.compile(f"^{_SPACE}([0-9]+){_SPACE}([smhdwMy]?){_SPACE}$")
DURATION_PATTERN = f"^{_SPACE}[0-9]*[1-9][0-9]*{_SPACE}[smhdwMy]?{_SPACE}$"  # a positive duration
# The longest lifetime anything may be given (a client's `ttl`, `7000y` included): far beyond any
# real use, and far inside what Redis accepts as an expiry.
MAX_TTL_SECONDS = 100 * 365 * 86400
_UNIT_SECONDS = {
    "": 1,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,  # GMS months are 30 days (decision in docs/decisions.md)
    "y": 365 * 86400,
}


def parse_duration(text: str | int) -> int:
    """Seconds in a GMS duration such as `30s`, `7d` or `6M` (a bare number is seconds)."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise ValueError(f"{text!r} is not a duration such as 30s, 10m, 12h, 7d, 2w, 6M or 5y")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    if seconds > MAX_TTL_SECONDS:
        raise ValueError(f"must be at most {MAX_TTL_SECONDS} seconds (100 years)")
    return seconds


class Limits(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Request limits; over them a request is refused and nothing is stored."""

    body_bytes: int = 16 * 1024 * 1024
    file_bytes: int = 10 * 1024 * 1024
    fields: int = 1000
    key_bytes: int = 4096
    # The HTTP connection (gmsd.web.protocol): the request line and headers, and how long a
    # client may take to send them and the body; idle time between requests (uvicorn's).
    header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    # And at `body_min_rate` bytes per second or more, measured over each `body_rate_window`
    # seconds (a stalled upload is cut off after one window, not only at `body_timeout`); the
    # same rate for an answer the client must take (gmsd.web.protocol).
    body_min_rate: int = 1024
    body_rate_window: float = 10.0
    keep_alive_timeout: int = 5
    # Requests in progress per worker process (gmsd.web.paths); more answer 503 at once.
    max_concurrent_requests: int = 256
    # Binary reads of values over `large_value_bytes` take a lane of their own: their own Redis
    # connection, at most `large_reads` per worker from the Redis read to the last byte sent, a
    # wait of at most `large_read_wait` seconds for a place (then 503).
    large_value_bytes: int = 1024 * 1024
    large_reads: int = 4
    large_read_wait: float = 10.0

    def fits_key(self, text: str) -> bool:
        """Whether `text` may be a key or an id: 1 to `key_bytes` UTF-8 bytes (the one length rule)."""
        if text.isascii():  # one byte a character (a flag of the string: no encoding needed)
            return 0 < len(text) <= self.key_bytes
        return len(text) > 0 and len(text.encode("utf-8")) <= self.key_bytes

    def __post_init__(self) -> None:
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            if not 0 < value < math.inf:  # NaN fails this too
                raise ValueError(f"`{field.name}` must be positive and finite")


class RedisOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How gmsd talks to Redis."""

    timeout: float = 2.0  # seconds: a dead Redis answers 503 within about this
    max_connections: int = 64

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.max_connections <= 0:
            raise ValueError("`timeout` and `max_connections` must be positive")


class OrchestrationOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Calls to the orchestration URL of `ors` services."""

    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("`timeout` must be positive")


# A conversation period in the configuration: GMS units only, `<integer><unit>` (MAINTENANCE.md §5.5).
_PERIOD = re.compile("^[0-9]+[smhdwMy]$")


def parse_period(text: str, name: str) -> int:
    """Seconds of a configured period such as `7d`; ValueError naming `name` otherwise."""
    if not isinstance(text, str) or _PERIOD.match(text) is None:
        raise ValueError(f"`{name}`: {text!r} is not of the form <integer><unit> (s, m, h, d, w, M, y), e.g. 7d")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"`{name}`: {exc}") from None


class ContextServicesOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Context Services settings (docs/api/context-services-maintenance.md)."""

    # How long a conversation lives after its last start or update (sliding), in GMS units.
    default_ttl: str = "7d"
    # The same per service type (the type as text): `[context_services.expiration_by_service_type]`.
    expiration_by_service_type: dict[str, str] = {}
    # Auto-complete of idle services (GMS `cview/auto-complete-enabled`, `cview/auto-complete-after`).
    auto_complete_enabled: bool = False
    auto_complete_after: int | None = None  # seconds after the last update; none: only per service
    auto_complete_sweep_interval: float = 5.0  # seconds between two sweeps of a process
    # Where POST /maintenance/services/files writes (created if missing).
    export_dir: str = "./export"

    def __post_init__(self) -> None:
        parse_period(self.default_ttl, "default_ttl")
        for kind, period in self.expiration_by_service_type.items():
            parse_period(period, f"expiration_by_service_type.{kind}")
        if self.auto_complete_after is not None and not 0 < self.auto_complete_after <= MAX_TTL_SECONDS:
            raise ValueError("`auto_complete_after` must be a positive number of seconds")
        if not 0 < self.auto_complete_sweep_interval < math.inf:
            raise ValueError("`auto_complete_sweep_interval` must be positive")
        if not self.export_dir:
            raise ValueError("`export_dir` must name a directory")

    @property
    def default_ttl_seconds(self) -> int:
        """The default conversation lifetime in seconds."""
        return parse_duration(self.default_ttl)

    def period_seconds(self, service_type: str | None) -> int:
        """How long a conversation of `service_type` lives after its last start or update."""
        chosen = self.expiration_by_service_type.get(service_type) if service_type is not None else None
        return _configured_seconds(chosen if chosen is not None else self.default_ttl)


@functools.lru_cache(maxsize=1024)  # the configured periods, checked at load: parsed once, not per start
def _configured_seconds(text: str) -> int:
    return parse_duration(text)


class AuthOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """HTTP Basic authentication: where the credentials are (never in this file), what /metrics needs."""

    file: str | None = None  # a credentials file (`gmsd.web.auth`); GMSD_AUTH_FILE wins over it
    metrics: Literal["open", "protected"] = "open"


# An origin as browsers send it: scheme, host (its first label may be `*`: any subdomain), port.
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header or method name (RFC 9110 token)
CORS_HEADERS = ("Content-Type", "Accept", "Origin", "X-Requested-With", "Authorization", "gms_user",
                "ContactCenterId", "GroupId")
CORS_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")


class CorsOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Cross-origin requests from browsers (API.md §0): off while `allowed_origins` is empty."""

    allowed_origins: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = CORS_HEADERS
    allowed_methods: tuple[str, ...] = CORS_METHODS
    allow_credentials: bool = False
    max_age: int = 600

    def __post_init__(self) -> None:
        for origin in self.allowed_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"`allowed_origins`: {origin!r} is not an origin such as https://app.example.com, "
                                 "https://*.example.com or \"*\"")
        for name in (*self.allowed_headers, *self.allowed_methods):
            if not _TOKEN.match(name):
                raise ValueError(f"`allowed_headers`/`allowed_methods`: {name!r} is not a header or method name")
        if not 0 <= self.max_age <= 86400:
            raise ValueError("`max_age`: seconds from 0 to 86400")

    @property
    def enabled(self) -> bool:
        """Whether browsers of other origins may call gmsd at all."""
        return bool(self.allowed_origins)


class ServiceConfig(msgspec.Struct, frozen=True):
    """One configured GMS service: `POST /genesys/1/service/{name}` creates instances of it."""

    name: str
    type: str = "builtin"
    service: str = "storage"
    ttl: int = 30
    # Other keys of the table: parameters that replace same-named request parameters.
    overrides: dict[str, str] = msgspec.field(default_factory=dict)
    ttl_configured: bool = False  # whether the table sets `_ttl` (else a request's `_ttl` may)


SERVICE_OPTIONS = ("_type", "_service", "_ttl")  # the `_` keys of every service table that are options

# Access-number pools (STORAGE.md §7.1).
BOOKING_SECONDS = (5, 1800)  # the range of `_booking_expiration_timeout`
ACCESS_CODE_DIGITS = (1, 10)  # the range of `_access_code_length`
DEFAULT_RESOURCE_GROUP = "DNIS"
_FLAG_OPTIONS = frozenset({"_provide_code", "_return_user_data", "_return_data", "_return_multiple_matches",
                           "_delete_service"})
MAX_POOL_NUMBERS = 1000
_GROUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCESS_NUMBER = re.compile(r"[0-9A-Za-z+*#._-]{1,64}")


class ResourceGroup(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`[resources.<group>]`: a pool of access numbers that built-in services reserve from."""

    numbers: list[str | int]
    allocation: Literal["random", "round-robin"] = "random"
    locking: bool = True  # false: a number may be reserved by many services at once
    booking_expiration_timeout: int = 30  # seconds a reservation lasts, unless a service says otherwise

    @property
    def access_numbers(self) -> list[str]:
        """The numbers as text, in configuration order."""
        return [str(number) for number in self.numbers]


_PROFILE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,25}")
PROFILE_TYPES = ("string", "integer", "long", "double", "date", "datetime", "currency", "boolean")


class ProfileAttribute(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`[[profiles.attributes]]`: one core attribute of the profile schema (PROFILES.md §3.1)."""

    name: str
    type: str
    length: int | None = None
    mandatory: bool = False
    default: str | int | float | bool | None = None

    def __post_init__(self) -> None:
        if _PROFILE_NAME.fullmatch(self.name) is None or self.name.lower() == "customer_id":
            raise ValueError(f"`name` {self.name!r}: a letter, then letters, digits or `_`, at most 26 characters")
        if self.type.lower() not in PROFILE_TYPES:
            raise ValueError(f"`type` {self.type!r}: one of {', '.join(PROFILE_TYPES)}")


# The core attributes when `[profiles]` names none: UCS's predefined contact attributes.
DEFAULT_PROFILE_ATTRIBUTES = tuple(ProfileAttribute(name, "string")
                                   for name in ("FirstName", "LastName", "PhoneNumber", "EmailAddress", "Title"))


class ProfilesOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`[profiles]`: customer profiles (UCS) on or off, and the core attributes of the profile schema."""

    enabled: bool = True
    attributes: tuple[ProfileAttribute, ...] | None = None  # None: the default schema; (): empty

    def __post_init__(self) -> None:
        names = [a.name.lower() for a in self.attributes or ()]
        if len(names) != len(set(names)):
            raise ValueError("`attributes`: two attributes have the same name (names are case-insensitive)")
        if len(names) > 64:
            raise ValueError("`attributes`: at most 64")

    @property
    def schema(self) -> tuple[ProfileAttribute, ...]:
        """The core attributes: the configured ones, or the default schema."""
        return DEFAULT_PROFILE_ATTRIBUTES if self.attributes is None else self.attributes


class _ServiceTable(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    type: str = msgspec.field(default="builtin", name="_type")
    service: str = msgspec.field(default="storage", name="_service")
    ttl: int = msgspec.field(default=30, name="_ttl")


class _ConfigFile(msgspec.Struct, forbid_unknown_fields=True):
    limits: Limits = msgspec.field(default_factory=Limits)
    redis: RedisOptions = msgspec.field(default_factory=RedisOptions)
    orchestration: OrchestrationOptions = msgspec.field(default_factory=OrchestrationOptions)
    context_services: ContextServicesOptions = msgspec.field(default_factory=ContextServicesOptions)
    auth: AuthOptions = msgspec.field(default_factory=AuthOptions)
    cors: CorsOptions = msgspec.field(default_factory=CorsOptions)
    services: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    resources: dict[str, ResourceGroup] = msgspec.field(default_factory=dict)
    profiles: ProfilesOptions = msgspec.field(default_factory=ProfilesOptions)


class Config(msgspec.Struct, frozen=True):
    """The whole decoded configuration."""

    source: str
    limits: Limits
    redis: RedisOptions
    orchestration: OrchestrationOptions
    context_services: ContextServicesOptions
    services: dict[str, ServiceConfig]
    auth: AuthOptions = AuthOptions()
    cors: CorsOptions = CorsOptions()
    resources: dict[str, ResourceGroup] = msgspec.field(default_factory=dict)
    profiles: ProfilesOptions = ProfilesOptions()


SAMPLE_CONFIG = """\
# Built-in sample configuration, used when GMSD_CONFIG is not set.
[services.request-interaction]
_type = "builtin"
_service = "storage"
_ttl = 3600

[services.storage]
_type = "builtin"
_service = "storage"
_ttl = 3600
"""


def _service(name: str, table: dict[str, Any], source: str) -> ServiceConfig:
    where = f"{source}: services.{name}"
    try:
        known = msgspec.convert(table, _ServiceTable)
    except msgspec.ValidationError as exc:
        key, problem = _located(exc)
        raise ConfigError(f"{where}.{key}: {problem}") from None
    if known.type not in ("builtin", "ors"):
        raise ConfigError(f"{where}._type: must be 'builtin' or 'ors', not {known.type!r}")
    if known.type == "builtin" and known.service not in BUILTIN_SERVICES:
        raise ConfigError(
            f"{where}._service: unknown built-in {known.service!r} (known: {', '.join(sorted(BUILTIN_SERVICES))})"
        )
    if known.type == "ors" and not known.service.startswith(("http://", "https://")):
        raise ConfigError(f"{where}._service: an ors service needs an http(s) URL, not {known.service!r}")
    if not 0 < known.ttl <= MAX_TTL_SECONDS:
        raise ConfigError(f"{where}._ttl: must be a positive number of seconds up to {MAX_TTL_SECONDS}, "
                          f"not {known.ttl}")
    if not name:
        raise ConfigError(f"{where}: a service name must not be empty")
    options: tuple[str, ...] = SERVICE_OPTIONS
    if known.type == "builtin":
        options += BUILTIN_OPTIONS.get(known.service, ())
    overrides: dict[str, str] = {}
    for key, value in table.items():
        if key in SERVICE_OPTIONS:
            continue
        if key.startswith("_") and key not in options and known.type == "builtin":
            # A typo of an option (`_tll`) must not silently become a parameter: the TTL would
            # quietly fall back to its default.
            raise ConfigError(f"{where}.{key}: not an option of a builtin service "
                              f"({known.service!r} has {', '.join(options)}); parameters do not start with `_`")
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}.{key}: a parameter must be a string, number or boolean")
        _check_option(f"{where}.{key}", key, value)
        overrides[key] = _gms_text(value)
    return ServiceConfig(name, known.type, known.service, known.ttl, overrides, "_ttl" in table)


def _check_option(where: str, key: str, value: Any) -> None:
    # A built-in's option is checked here, so that a bad value stops the start, not every request.
    ranges = {"_booking_expiration_timeout": BOOKING_SECONDS, "_access_code_length": ACCESS_CODE_DIGITS}
    if key in ranges:
        low, high = ranges[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{where}: must be a whole number from {low} to {high}")
    elif key in _FLAG_OPTIONS and not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false")


def _resource_groups(groups: dict[str, ResourceGroup], source: str) -> dict[str, ResourceGroup]:
    owner: dict[str, str] = {}
    for group, pool in groups.items():
        where = f"{source}: resources.{group}"
        if _GROUP_NAME.fullmatch(group) is None:
            raise ConfigError(f"{where}: a group name is 1 to 64 letters, digits, `.`, `_` or `-`")
        numbers = pool.access_numbers
        if not 0 < len(numbers) <= MAX_POOL_NUMBERS:
            raise ConfigError(f"{where}.numbers: 1 to {MAX_POOL_NUMBERS} access numbers")
        for number in numbers:
            if _ACCESS_NUMBER.fullmatch(number) is None:
                raise ConfigError(f"{where}.numbers: {number!r} is not 1 to 64 digits, letters or `+*#._-`")
            if number in owner:
                # match-interaction finds a caller's reservation by the number dialled alone.
                raise ConfigError(f"{where}.numbers: {number!r} is already in resources.{owner[number]}")
            owner[number] = group
        low, high = BOOKING_SECONDS
        if not low <= pool.booking_expiration_timeout <= high:
            raise ConfigError(f"{where}.booking_expiration_timeout: must be {low} to {high} seconds")
    return groups


def _gms_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _located(exc: Exception) -> tuple[str, str]:
    # msgspec says "Expected `int`, got `str` - at `$.limits.fields`": split off a TOML-like key.
    text = str(exc)
    match = re.match(r"^(.*) - at `\$\.?(.*)`$", text)
    if match:
        return match.group(2) or "(top level)", match.group(1)
    return "(top level)", text


def _clean(exc: Exception) -> str:
    key, problem = _located(exc)
    return f"{key}: {problem}"


def parse_config(text: str, source: str) -> Config:
    """Decode configuration text; raise ConfigError naming `source`, the key and the problem."""
    try:
        raw = msgspec.toml.decode(text.encode(), type=_ConfigFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_clean(exc)}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    services = {name: _service(name, table, source) for name, table in raw.services.items()}
    resources = _resource_groups(raw.resources, source)
    for name, service in services.items():
        group = service.overrides.get("_resource_group")
        if group is not None and group not in resources:
            raise ConfigError(f"{source}: services.{name}._resource_group: no [resources.{group}] is configured")
    return Config(source, raw.limits, raw.redis, raw.orchestration, raw.context_services, services, raw.auth,
                  raw.cors, resources, raw.profiles)


def load_config(path: str | None) -> Config:
    """Read the configuration file at `path`, or the built-in sample when `path` is None."""
    if path is None:
        return parse_config(SAMPLE_CONFIG, "<built-in sample configuration>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    return parse_config(text, path)
