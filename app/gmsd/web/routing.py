"""Routing by resource: one path template, one handler per HTTP method.

Starlette's router lets a request whose path fits a route but whose method does not fall through
to a later route that also fits (`GET /services/start` would reach `GET /services/{id}` with the
id `start`). gmsd routes as OpenAPI describes paths instead: the first template the path fits
(concrete templates are listed before templated ones) is *the* resource, and a method it does
not serve is a 405 whose `Allow` names exactly the methods it does. So the routing, the `Allow`
header and the OpenAPI document agree.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from gmsd.errors import BadRequest

Handler = Callable[..., Any]
# Run before the handler with the request and the path template: None to go on, or the answer.
Guard = Callable[[Scope, str], Awaitable[Response | None]]
_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE")


class Resource(Route):
    """A path template with its handlers by method (HEAD is served by the GET handler)."""

    def __init__(self, path: str, handlers: Mapping[str, Handler], guard: Guard | None = None) -> None:
        if not handlers:
            raise ValueError(f"{path}: a resource needs at least one method")
        self.handlers = dict(handlers)
        self.guard = guard
        super().__init__(path, next(iter(handlers.values())), methods=list(handlers))
        # Starlette ends the pattern with `$`, which also matches before a final newline, and its
        # `{key:path}` is `.*`, which stops at one: `…/storage/abc%0A` read (and DELETE deleted)
        # the key `abc`. The whole path must match, newlines and all.
        pattern = self.path_regex.pattern
        assert pattern.endswith("$")
        self.path_regex = re.compile(pattern[:-1] + r"\Z", re.DOTALL)
        # Coroutine handlers are called here (one frame less per request); a plain function runs
        # in the thread pool, through Starlette's `request_response`.
        self._handlers: dict[str, Handler] = {
            method: handler for method, handler in handlers.items() if inspect.iscoroutinefunction(handler)}
        self._apps: dict[str, ASGIApp] = {
            method: request_response(handler) for method, handler in handlers.items()
            if method not in self._handlers}
        for by_method in (self._handlers, self._apps):
            if "GET" in by_method:
                by_method["HEAD"] = by_method["GET"]
        methods = self.methods or set()
        self.allow = ", ".join(sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else len(_ORDER), m)))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """The path alone decides: a method this resource lacks is still this resource's (405)."""
        match, child_scope = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child_scope

    def guarded(self, guard: Guard) -> Resource:
        """This resource with `guard` in front of every method (a copy: routes are shared)."""
        return Resource(self.path, self.handlers, guard)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the guard, then the handler of the request's method (or answer 405 with `Allow`)."""
        # uvicorn and Starlette decode percent escapes that are not UTF-8 into U+FFFD: an id or a
        # query value would silently be another one. Refused instead (the contract: UTF-8).
        if not _is_utf8(scope.get("raw_path", b"")):
            raise BadRequest("the path has percent escapes that are not UTF-8")
        if not _is_utf8(scope.get("query_string", b"")):
            raise BadRequest("the query string is not UTF-8")
        if self.guard is not None:
            refusal = await self.guard(scope, self.path)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        # Not Starlette's `request_response` either: its inner exception layer cost two closures
        # and a wrapped `send` per request for nothing (gmsd.web.observer maps the same exceptions
        # with the same handlers, and refuses as Starlette would once an answer has started).
        method = scope["method"]
        handler = self._handlers.get(method)
        if handler is not None:
            response = await handler(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        app = self._apps.get(method)
        if app is None:
            raise HTTPException(405, headers={"Allow": self.allow})
        await app(scope, receive, send)


def _is_utf8(raw: bytes) -> bool:
    """Whether `raw`, percent escapes decoded, is UTF-8 (cheap for the usual escape-free ASCII)."""
    if raw.isascii() and b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_DEPTH = 4  # leading path segments that index the routes


def _literal_key(route: BaseRoute) -> str | None:
    """The leading segments of a route's template that are plain text (at most `_DEPTH`), as the
    path text they make (`/genesys/1/service`); None for a route that is not a path template (a
    mount, a host): it is tried for every path."""
    if not isinstance(route, Route):
        return None
    literal = itertools.takewhile(lambda segment: "{" not in segment, route.path.split("/")[1:])
    return "".join("/" + segment for segment in itertools.islice(literal, _DEPTH))


class ResourceRouter(Router):
    """Starlette's router, trying only the routes that a path's leading segments allow.

    Starlette tries every route in order, a regular expression each: the 21st route cost 21
    matches (S5, a customer query). A template's leading plain segments can only match the same
    text, so the routes are indexed by them once; a request looks up its own first segments (at
    most `_DEPTH` + 1 dictionary reads) and tries those routes only, still in their order: the
    first that fits wins, as before. Those routes' templates are then one regular expression
    (`_Matcher`): one match per request instead of one per candidate, each building Starlette's
    child scope. Routes appended after the start (tests do) are indexed at the next request.
    """

    _indexed_count = -1
    _by_key: dict[str, list[int]]
    _unindexed: list[int]
    _merged: dict[tuple[str, ...], Sequence[BaseRoute]]
    _matchers: dict[tuple[str, ...], _Matcher | None]

    def _index(self) -> None:
        self._by_key, self._unindexed, self._merged, self._matchers = {}, [], {}, {}
        for position, route in enumerate(self.routes):
            key = _literal_key(route)
            if key is None:
                self._unindexed.append(position)
            else:
                self._by_key.setdefault(key, []).append(position)
        self._indexed_count = len(self.routes)

    def candidates(self, path: str) -> Sequence[BaseRoute]:
        """The routes that may fit `path`, in the router's order."""
        if self._indexed_count != len(self.routes):
            self._index()
        return self._candidates(self._keys(path))

    def _keys(self, path: str) -> tuple[str, ...]:
        """The index keys that `path`'s leading segments are (at most `_DEPTH` + 1 lookups)."""
        by_key = self._by_key
        found: tuple[str, ...] = ("",) if "" in by_key else ()
        end = 0
        for _ in range(_DEPTH):
            end = path.find("/", end + 1)
            prefix = path if end < 0 else path[:end]
            if prefix in by_key:
                found += (prefix,)
            if end < 0:
                break
        return found

    def _candidates(self, found: tuple[str, ...]) -> Sequence[BaseRoute]:
        merged = self._merged.get(found)
        if merged is None:
            positions = sorted(itertools.chain(self._unindexed, *(self._by_key[key] for key in found)))
            merged = [self.routes[position] for position in positions]
            self._merged[found] = merged  # bounded: `found` holds route keys only
        return merged

    def _matcher(self, path: str) -> _Matcher | None:
        """The one expression of `path`'s candidates (built once per candidate list); None when a
        candidate is not a `Resource` (then `app` tries them in turn, as Starlette does)."""
        if self._indexed_count != len(self.routes):
            self._index()
        found = self._keys(path)
        if found not in self._matchers:
            self._matchers[found] = _Matcher.of(self._candidates(found))
        return self._matchers[found]

    def resolve(self, path: str) -> tuple[Resource, dict[str, Any]] | None:
        """The resource `path` is routed to with its path parameters, or None when it fits no
        template (or its candidates are not all resources)."""
        matcher = self._matcher(path)
        return matcher.resolve(path) if matcher is not None else None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route an HTTP request among its candidates; anything else as Starlette does."""
        if scope["type"] != "http" or self.redirect_slashes:
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        path = get_route_path(scope)
        matcher = self._matcher(path)
        if matcher is not None:
            resolved = matcher.resolve(path)
            if resolved is None:
                await self.default(scope, receive, send)
                return
            resource, params = resolved
            scope["route"] = resource
            scope["endpoint"] = resource.endpoint
            outer = scope.get("path_params")
            scope["path_params"] = {**outer, **params} if outer else params
            await resource.handle(scope, receive, send)
            return
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in self.candidates(path):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)


_GROUP = re.compile(r"\(\?P<(\w+)>")


class _Matcher:
    """The resources of one candidate list as one regular expression, each template an
    alternative in the list's order: one match finds the first that fits (as trying each
    template's own expression in turn does) and its parameters, renamed per alternative."""

    __slots__ = ("regex", "routes")

    def __init__(self, resources: Sequence[Resource]) -> None:
        alternatives = []
        # By the alternative's group name: the resource and its (parameter, group, convertor).
        self.routes: dict[str, tuple[Resource, list[tuple[str, str, Callable[[str], Any]]]]] = {}
        for position, resource in enumerate(resources):
            pattern = resource.path_regex.pattern
            assert pattern.startswith("^") and pattern.endswith(r"\Z"), pattern
            tag = f"r{position}"
            alternatives.append(f"(?P<{tag}>" + _GROUP.sub(rf"(?P<{tag}_\1>", pattern[1:-2]) + ")")
            self.routes[tag] = (resource, [
                (name, f"{tag}_{name}", convertor.convert) for name, convertor in resource.param_convertors.items()])
        # No resource at all: an expression that fits nothing.
        self.regex = re.compile("(?:" + "|".join(alternatives) + r")\Z" if alternatives else "(?!)", re.DOTALL)

    @classmethod
    def of(cls, candidates: Sequence[BaseRoute]) -> _Matcher | None:
        """The matcher of `candidates`; None unless every one is a `Resource`."""
        resources = [route for route in candidates if isinstance(route, Resource)]
        return cls(resources) if len(resources) == len(candidates) else None

    def resolve(self, path: str) -> tuple[Resource, dict[str, Any]] | None:
        """The first resource whose template fits `path`, with its parameters."""
        match = self.regex.match(path)
        if match is None:
            return None
        tag = match.lastgroup
        assert tag is not None
        resource, params = self.routes[tag]
        return resource, {name: convert(match[group]) for name, group, convert in params}
