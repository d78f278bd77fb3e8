"""The OpenAPI 3.1 document of gmsd, built once at start-up from the routes themselves.

Each handler carries the description of its operation (`Api.operation`, a decorator written
next to the handler); `build_document` walks the application's routes (`gmsd.web.routing`: a
path template with a handler per method), so a route cannot be left out: a handler without a
description stops the build. JSON bodies that are msgspec Structs are described by msgspec itself
(`msgspec.json.schema_components`), so the document cannot drift from what the code decodes
and encodes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from starlette.routing import BaseRoute

from gmsd.web.routing import Resource

# A JSON Schema as a dict, or a type that msgspec describes (a Struct, `list[Struct]`, …).
Schema = dict[str, Any] | type | Any
Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)

REF_TEMPLATE = "#/components/schemas/{name}"
JSON = "application/json"
_CONVERTER = re.compile(r"{([^}:]+)(:[^}]+)?}")

# What each error status means, for the descriptions of error answers.
ERROR_MEANINGS = {
    400: "the request is not acceptable (bad input)",
    401: "credentials missing or wrong (only when authentication is on)",
    403: "forbidden: customer profiles are not enabled, or the profile schema is empty",
    404: "not found: an unknown route, service or key",
    409: "the resource is not in a state that allows this (already ended)",
    413: "a body, file or field count over its configured limit",
    405: "the path is that of another resource (listed before this one), which lacks this method",
    415: "a body with a content type this route does not read",
    500: "Could not read JSON (documented GMS behaviour for malformed JSON)",
    502: "the orchestration failed",
    503: "storage unavailable (Redis cannot be reached)",
    504: "the orchestration did not answer in time",
}


@dataclass(frozen=True)
class Param:
    """A query, header or path parameter."""

    name: str
    location: str  # "query", "header" or "path"
    schema: Schema
    description: str
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """One documented response: its body per media type (none: no body) and its headers."""

    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description


@dataclass(frozen=True)
class Operation:
    """Everything the document says about one (route, method)."""

    summary: str
    tag: str
    answers: Mapping[int, Answer]
    params: tuple[Param, ...]
    path_params: Mapping[str, Param]
    body: Mapping[str, Schema] | None
    description: str
    error: Schema  # the body of this API's errors (a 401 too)


_OPERATIONS: dict[Handler, Operation] = {}


@dataclass(frozen=True)
class Api:
    """What the operations of one API share: tag, error body, path parameters, common headers."""

    tag: str
    error: Schema
    path_params: Mapping[str, Param]
    headers: tuple[Param, ...] = ()

    def operation(self, summary: str, *, answers: Mapping[int, Answer], errors: Iterable[int] = (),
                  params: Iterable[Param] = (), body: Mapping[str, Schema] | None = None,
                  description: str = "") -> Callable[[H], H]:
        """Describe the handler this decorates: its answers, the error statuses it may give
        (bodies of this API's error shape), its query parameters and its request body."""
        documented = dict(answers)
        for status in errors:
            documented[status] = Answer(ERROR_MEANINGS[status], {JSON: self.error})
        described = Operation(summary, self.tag, documented, (*self.headers, *params), self.path_params,
                              body, description, self.error)

        def register(handler: H) -> H:
            _OPERATIONS[handler] = described
            return handler

        return register


def described(endpoint: Handler) -> Operation | None:
    """The description of a route's endpoint (a `functools.partial` of a handler counts as it)."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return _OPERATIONS.get(endpoint)


def openapi_path(route_path: str) -> str:
    """A Starlette path template as OpenAPI writes it (`{key:path}` -> `{key}`)."""
    return _CONVERTER.sub(r"{\1}", route_path)


def path_parameter_names(route_path: str) -> list[str]:
    """The names of a template's path parameters, in order."""
    return [match.group(1) for match in _CONVERTER.finditer(route_path)]


@dataclass
class _Schemas:
    """The types the document names, described by msgspec in one call at the end."""

    types: list[Any] = field(default_factory=list)

    def ref(self, schema: Schema) -> dict[str, Any]:
        if isinstance(schema, dict):
            return schema
        self.types.append(schema)
        return {"$type": len(self.types) - 1}  # replaced once every type is known

    def resolve(self, document: Any) -> dict[str, Any]:
        described, components = msgspec.json.schema_components(self.types, ref_template=REF_TEMPLATE)

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                if set(node) == {"$type"}:
                    return described[node["$type"]]
                return {key: walk(value) for key, value in node.items()}
            if isinstance(node, list):
                return [walk(value) for value in node]
            return node

        resolved: dict[str, Any] = walk(document)
        return resolved | {"components": {**resolved.get("components", {}), "schemas": components}}


def _parameter(param: Param, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location, "description": param.description,
                           "required": param.required or param.location == "path",
                           "schema": schemas.ref(param.schema)}
    if isinstance(param.schema, dict) and param.schema.get("type") == "object":
        out.update(style="form", explode=True)  # free-form `k=v` query parameters
    return out


def _answer(answer: Answer, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.content:
        out["content"] = {media: {"schema": schemas.ref(schema)} for media, schema in answer.content.items()}
    if answer.headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                          for name, text in answer.headers.items()}
    return out


def _operation_id(method: str, path: str) -> str:
    # `/console` and `/console/` are two resources: the slash is a word of its own.
    words = [*re.findall(r"[A-Za-z0-9]+", path), *(["index"] if path.endswith("/") and path != "/" else [])]
    return method.lower() + "_" + "_".join(words)


def _operation(route: Resource, method: str, op: Operation, schemas: _Schemas, protected: bool,
               shadowed: bool) -> dict[str, Any]:
    names = path_parameter_names(route.path)
    missing = [name for name in names if name not in op.path_params]
    if missing:
        raise ValueError(f"route {route.path}: path parameters {missing} are not described")
    params = [op.path_params[name] for name in names] + list(op.params)
    answers = dict(op.answers)
    if names:  # a path parameter holding a `/` matches no route: 404
        answers.setdefault(404, Answer(ERROR_MEANINGS[404], {JSON: op.error}))
    if shadowed:  # e.g. associate's `{id}` = `active`: the path is the `…/services/active` resource's
        answers.setdefault(405, Answer(ERROR_MEANINGS[405], {JSON: op.error}, {"Allow": "the methods it has"}))
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "operationId": _operation_id(method, openapi_path(route.path))}
    if op.description:
        out["description"] = op.description
    if params:
        out["parameters"] = [_parameter(p, schemas) for p in params]
    if op.body is not None:
        out["requestBody"] = {"required": False,
                              "content": {media: {"schema": schemas.ref(s)} for media, s in op.body.items()}}
    if protected:
        answers[401] = Answer(ERROR_MEANINGS[401], {JSON: op.error}, {"WWW-Authenticate": 'Basic realm="gmsd"'})
        out["security"] = [{"basic": []}]
    out["responses"] = {str(status): _answer(answers[status], schemas) for status in sorted(answers)}
    return out


def build_document(routes: Iterable[BaseRoute], *, title: str, version: str,
                   protected: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The OpenAPI document of `routes`: every route, every method, or a ValueError.

    `protected(path template)` says which routes need credentials (None: authentication is
    off); their operations carry the `basic` security scheme and the 401 answer.
    """
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    earlier: list[Resource] = []
    for route in routes:
        if not isinstance(route, Resource):
            raise ValueError(f"{route!r} is not a resource: describe it")
        path = openapi_path(route.path)
        if path in paths:
            raise ValueError(f"{path} is routed twice")
        guarded = protected is not None and protected(route.path)
        # The first resource a path fits takes it (gmsd.web.routing): does an earlier one take some
        # of the paths this template fits, with other methods?
        shadows = [other for other in earlier if route.path_regex.match(other.path)]
        operations = paths[path] = {}
        for method, handler in route.handlers.items():
            op = described(handler)
            if op is None:
                raise ValueError(f"{method} {route.path} has no description (decorate its handler)")
            shadowed = any(method not in other.handlers for other in shadows)
            operations[method.lower()] = _operation(route, method, op, schemas, guarded, shadowed)
        earlier.append(route)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
    }
    if protected is not None:
        document["components"] = {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}}
    return schemas.resolve(document)
