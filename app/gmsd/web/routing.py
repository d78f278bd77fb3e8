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
        raw_path: bytes = scope.get("raw_path", b"")
        query: bytes = scope.get("query_string", b"")
        # Plain ASCII without escapes (nearly every request) is UTF-8: decoded only otherwise.
        if b"%" in raw_path or b"%" in query or not (raw_path.isascii() and query.isascii()):
            if not _is_utf8(raw_path):
                raise BadRequest("the path has percent escapes that are not UTF-8")
            if not _is_utf8(query):
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


class ResourceRouter(Router):
    """Starlette's router, matching a path against every route at once.

    Starlette tries every route in order, a regular expression each: the 21st route cost 21
    matches (S5, a customer query). Here the routes are one tree of path segments, written as one
    regular expression (`RouteTree`), so a request costs one match, whatever the number of
    routes, and each segment of the path is read once. The first route in order that fits still
    wins. Routes that cannot be one such tree (a mount, a convertor other than `str` and `path`,
    an order the tree cannot keep) are tried in turn, as Starlette does. Routes appended after
    the start (tests do) are taken in at the next request.
    """

    _built_for = -1
    _tree: RouteTree | None = None

    def tree(self) -> RouteTree | None:
        """The tree of the routes as they are now; None when they cannot be one."""
        if self._built_for != len(self.routes):
            self._tree = RouteTree.of(self.routes)
            self._built_for = len(self.routes)
        return self._tree

    def resolve(self, path: str) -> tuple[Resource, dict[str, Any]] | None:
        """The resource `path` is routed to with its path parameters, or None when it fits no
        template (or the routes cannot be one tree)."""
        tree = self.tree()
        return tree.resolve(path) if tree is not None else None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route an HTTP request with the tree; anything else as Starlette does."""
        if scope["type"] != "http" or self.redirect_slashes:
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        tree = self.tree()
        if tree is not None:
            resolved = tree.resolve(get_route_path(scope))
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
        for route in self.routes:
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


_PARAMETER = re.compile(r"\{(\w+)(?::(\w+))?\}")


class _Unrepresentable(Exception):
    """The routes cannot be one tree that picks what Starlette's scan picks."""


class _Node:
    """The templates that share the segments up to here: by the next segment (a text, or the
    one parameter child whatever the parameter's name), ending here, or taking the rest."""

    __slots__ = ("ends", "group", "literals", "param", "positions", "rests")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.group = ""  # the regular expression group of the parameter segment leading here
        self.ends: list[int] = []  # positions of the templates ending here
        self.rests: list[int] = []  # positions of the templates whose `{name:path}` begins here
        self.positions: list[int] = []  # positions of every template at or below this node

    def pattern(self) -> str:
        """The expression of what follows this node, each branch beginning with `/` or ending
        the template. Branches that may fit the same path go in the routes' order; if their
        positions interleave, no order of branches is the scan's (`_Unrepresentable`)."""
        units: list[tuple[int, int, str]] = []  # (first position, last position, branch)
        if self.literals:
            positions = [p for child in self.literals.values() for p in child.positions]
            # Different texts of one segment never fit the same path: any order among them.
            branch = "|".join("/" + re.escape(text) + child.pattern() for text, child in self.literals.items())
            units.append((min(positions), max(positions), branch))
        if self.param is not None:
            child = self.param
            # Possessive: a segment is never given back (no `/` in it), so failing is quick.
            units.append((min(child.positions), max(child.positions),
                          f"/(?P<{child.group}>[^/]++)" + child.pattern()))
        units += [(position, position, f"/(?P<x{position}>.*)(?P<t{position}>)") for position in self.rests]
        units.sort()
        for before, after in itertools.pairwise(units):
            if before[1] > after[0]:
                raise _Unrepresentable
        # A template ending here fits only the path that ends here: no other branch does.
        branches = ([f"(?P<t{min(self.ends)}>)"] if self.ends else []) + [unit[2] for unit in units]
        return "(?:" + "|".join(branches) + ")"


class RouteTree:
    """Resources as one regular expression: their templates' segments as a tree, each segment
    of a path matched once, the first template in order that fits found by one match (its end
    is the expression's last group, `t<position>`) with its parameters."""

    __slots__ = ("regex", "routes")

    def __init__(self, regex: re.Pattern[str], routes: dict[str, tuple[Resource, tuple[str, ...], tuple[str, ...]]]):
        self.regex = regex
        # By the number of a template's end group: the resource, its parameters' names, and the
        # numbers of the groups that hold them (numbers: a name costs a lookup per match).
        index = regex.groupindex
        self.routes = {index[end]: (resource, names, tuple(index[group] for group in groups))
                       for end, (resource, names, groups) in routes.items()}

    @classmethod
    def of(cls, routes: Sequence[BaseRoute]) -> RouteTree | None:
        """The tree of `routes`; None unless every one is a `Resource` whose segments are each
        text, `{name}` or (last) `{name:path}`, in an order the tree keeps."""
        root = _Node()
        found: dict[str, tuple[Resource, tuple[str, ...], tuple[str, ...]]] = {}
        groups = itertools.count()
        for position, route in enumerate(routes):
            if not isinstance(route, Resource):
                return None
            node, names, holders = root, [], []
            node.positions.append(position)
            segments = route.path.split("/")[1:]
            for index, segment in enumerate(segments):
                parameter = _PARAMETER.fullmatch(segment)
                if parameter is None:
                    if "{" in segment:
                        return None  # a parameter inside a segment
                    node = node.literals.setdefault(segment, _Node())
                elif parameter[2] in (None, "str"):
                    if node.param is None:
                        node.param = _Node()
                        node.param.group = f"p{next(groups)}"
                    node = node.param
                    names.append(parameter[1])
                    holders.append(node.group)
                elif parameter[2] == "path" and index == len(segments) - 1:
                    node.rests.append(position)
                    names.append(parameter[1])
                    holders.append(f"x{position}")
                    break
                else:
                    return None  # another convertor, or `:path` before the end
                node.positions.append(position)
            else:
                node.ends.append(position)
            found[f"t{position}"] = (route, tuple(names), tuple(holders))
        try:
            pattern = root.pattern()
        except _Unrepresentable:
            return None
        regex = re.compile(pattern + r"\Z", re.DOTALL)
        # A template shadowed by an earlier one of the same text has no end group: never chosen.
        return cls(regex, {end: route for end, route in found.items() if end in regex.groupindex})

    def resolve(self, path: str) -> tuple[Resource, dict[str, Any]] | None:
        """The first resource whose template fits `path`, with its parameters."""
        match = self.regex.match(path)
        if match is None:
            return None
        resource, names, holders = self.routes[match.lastindex]  # type: ignore[index]  # a match ends in a group
        if not holders:
            return resource, {}
        if len(holders) == 1:
            return resource, {names[0]: match[holders[0]]}
        return resource, dict(zip(names, match.group(*holders)))  # noqa: B905  # as many by construction
