"""`GMSD_REDIS_URL`: which Redis deployment gmsd talks to, decoded in one place.

Forms (TLS with the `rediss` variants):

    redis://host:port/db, rediss://…, unix:///path       one server (redis-py decodes these)
    redis+cluster://[user:password@]host:port[,host:port…]        Redis Cluster seed nodes
    redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/db]   Sentinel

Credentials before `@` are those of the Redis data nodes (percent-encode `@ : / ,` in them).
Sentinels are contacted with the same TLS setting, and with their own credentials when the
URL has `?sentinel_password=…[&sentinel_username=…]` (sentinels often have none, or another).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio.connection import parse_url

from gmsd.errors import ConfigError

Kind = Literal["server", "cluster", "sentinel"]

_SERVER_SCHEMES = frozenset({"redis", "rediss", "unix"})
_DEFAULT_PORTS: dict[Kind, int] = {"server": 6379, "cluster": 6379, "sentinel": 26379}
_SENTINEL_PARAMETERS = frozenset({"sentinel_username", "sentinel_password"})
_SECRET_PARAMETER = re.compile(r"(?i)(sentinel_password=)[^&#]*")


@dataclass(frozen=True)
class RedisTarget:
    """A decoded `GMSD_REDIS_URL`."""

    kind: Kind
    url: str  # the URL as given (a single server's URL is handed to redis-py as is)
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seed nodes, or sentinels
    tls: bool = False
    username: str | None = None
    password: str | None = None
    master: str | None = None  # sentinel: the monitored master's name
    db: int = 0
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:
        # Never let a password reach a log line through a repr.
        return (f"RedisTarget(kind={self.kind!r}, nodes={self.nodes!r}, tls={self.tls}, "
                f"username={self.username!r}, password={_hidden(self.password)!r}, master={self.master!r}, "
                f"db={self.db}, sentinel_username={self.sentinel_username!r}, "
                f"sentinel_password={_hidden(self.sentinel_password)!r})")


def _hidden(secret: str | None) -> str | None:
    return None if secret is None else "***"


def redacted(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and logs."""
    url = _SECRET_PARAMETER.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    # The last "@" ends the credentials even when an unencoded "/" or "@" sits in the password
    # (hiding too much of a malformed URL is fine, showing a password is not).
    userinfo, at, tail = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def parse_redis_url(url: str) -> RedisTarget:
    """Decode `url`; raise ConfigError naming the problem (with any password hidden)."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(f"redis URL {redacted(url)!r}: expected scheme://…, e.g. redis://host:6379/0")
    scheme = scheme.lower()
    if scheme in _SERVER_SCHEMES:
        try:
            parse_url(url)  # redis-py's own decoding, so a bad URL is caught before start-up
        except ValueError as exc:
            raise ConfigError(f"redis URL {redacted(url)!r}: {exc}") from None
        return RedisTarget("server", url, tls=scheme == "rediss")
    base, plus, kind = scheme.partition("+")
    if not plus or base not in ("redis", "rediss") or kind not in ("cluster", "sentinel"):
        raise ConfigError(
            f"redis URL {redacted(url)!r}: unknown scheme {scheme!r} (use redis, rediss, unix, "
            "redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel)"
        )
    return _parse_multi_node(url, "cluster" if kind == "cluster" else "sentinel", base == "rediss")


def _parse_multi_node(url: str, kind: Kind, tls: bool) -> RedisTarget:
    where = f"redis URL {redacted(url)!r}"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ of an IPv6 address
        raise ConfigError(f"{where}: {exc}") from None
    if parts.fragment:
        raise ConfigError(f"{where}: a fragment (#…) is not supported")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    allowed = _SENTINEL_PARAMETERS if kind == "sentinel" else frozenset()
    unknown = sorted(set(query) - allowed)
    if unknown or any(len(values) > 1 for values in query.values()):
        accepted = f" (accepted: {', '.join(sorted(allowed))}, once each)" if allowed else ""
        raise ConfigError(f"{where}: unsupported query parameter(s) {', '.join(unknown) or 'repeated'}{accepted}")
    sentinel_username = query.get("sentinel_username", [None])[0] or None
    sentinel_password = query.get("sentinel_password", [None])[0]
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_host_port(item, _DEFAULT_PORTS[kind], where) for item in hosts.split(","))
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if kind == "cluster":
        if segments not in ([], ["0"]):
            raise ConfigError(f"{where}: Redis Cluster has only database 0; the path must be empty or /0")
        return RedisTarget(kind, url, nodes, tls, username, password)
    if not segments or not segments[0]:
        raise ConfigError(f"{where}: name the master after the sentinels, e.g. redis+sentinel://host:26379/mymaster")
    if len(segments) > 2:
        raise ConfigError(f"{where}: expected /<master name>[/<db>] after the sentinels")
    db = _number(segments[1], "database", where) if len(segments) == 2 else 0
    return RedisTarget(kind, url, nodes, tls, username, password, segments[0], db, sentinel_username, sentinel_password)


def _host_port(item: str, default_port: int, where: str) -> tuple[str, int]:
    if not item:
        raise ConfigError(f"{where}: empty host in the node list (expected host:port[,host:port…])")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ConfigError(f"{where}: malformed IPv6 address {item!r} (expected [address]:port)")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
        if not host or ":" in port_text:
            raise ConfigError(f"{where}: malformed host {item!r} (expected host:port; IPv6 as [address]:port)")
    port = _number(port_text, "port", where) if port_text else default_port
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} of {item!r} is out of range")
    return host, port


def _number(text: str, what: str, where: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"{where}: {what} must be a number, not {text!r}")
    return int(text)
