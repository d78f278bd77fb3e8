"""The router (`gmsd.web.routing.ResourceRouter`, one tree of every route) picks exactly the route
and parameters Starlette's scan of every route in order would pick, for every template of the
application and for paths that fit none; routes the tree cannot hold are scanned as Starlette does."""

from __future__ import annotations

import re

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.main import create_app
from gmsd.settings import Settings
from gmsd.web.routing import Handler, Resource, ResourceRouter

APP = create_app(Settings("redis://127.0.0.1:1/0", parse_config("", "<test>")))
ROUTER = APP.router
assert isinstance(ROUTER, ResourceRouter)


def _scan(path: str, method: str = "GET") -> Route | None:
    """What Starlette's router does: the first route, in order, whose template fits."""
    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    for route in ROUTER.routes:
        if route.matches(scope)[0] is not Match.NONE:
            assert isinstance(route, Route)
            return route
    return None


def _resolved(path: str) -> tuple[Route, dict[str, object]] | None:
    """What the router serves: its one expression of every route (`ResourceRouter.resolve`)."""
    return ROUTER.resolve(path)


def _scanned(path: str) -> tuple[Route, dict[str, object]] | None:
    route = _scan(path)
    if route is None:
        return None
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    return route, route.matches(scope)[1]["path_params"]


def _examples(template: str) -> list[str]:
    """Paths that fit `template`: parameters filled with plain text, words of other templates
    (`start`, `binary`, `active`…) and, for `:path` ones, several segments."""
    words = ["x1", "start", "binary", "active", "storage", "custom", "services", "end"]
    examples = []
    for word in words:
        filled = re.sub(r"\{[^}:]+:path\}", f"{word}/b/c", template)
        examples.append(re.sub(r"\{[^}]+\}", word, filled))
    return examples


TEMPLATES = sorted({route.path for route in ROUTER.routes if isinstance(route, Route)})


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_is_routed_as_a_scan_of_every_route_would(template: str) -> None:
    assert ROUTER.tree() is not None  # the application's routes are one tree
    for path in _examples(template):
        assert _scan(path) is not None, path
        assert _resolved(path) == _scanned(path), path


@pytest.mark.parametrize("path", ["/", "/nothing", "/genesys", "/genesys/1", "/genesys/1/service",
                                  "/genesys/2/service/x/storage", "/genesys/1/cs/", "/healthz/x",
                                  "/console/api", "/docsx", "/genesys/1/cs/services/x/states/y/z/w"])
def test_paths_that_fit_no_template_fit_none_either_way(path: str) -> None:
    assert _resolved(path) == _scanned(path)


@pytest.mark.parametrize("path", ["/genesys/1/service/abc/storage/a%0A", "/genesys/1/service/abc/storage/a\nb",
                                  "/genesys/1/service/abc/storage/a/b/c", "/genesys/1/cs/services/s1/states/t1",
                                  "/genesys/1/storage/area/binary/x/y"])
def test_parameters_are_those_of_the_first_template_that_fits(path: str) -> None:
    found = _resolved(path)
    assert found is not None and found == _scanned(path)
    assert all(isinstance(value, str) and value for value in found[1].values())


def test_a_route_added_after_the_start_is_routed() -> None:
    async def late(request: Request) -> Response:
        return PlainTextResponse("late")

    app = create_app(Settings("redis://127.0.0.1:1/0", parse_config("", "<test>")))
    with TestClient(app) as client:
        assert client.get("/late/route").status_code == 404  # indexes the routes of the start
        app.router.routes.append(Route("/late/{name}", late))
        answer = client.get("/late/route")
    assert answer.status_code == 200 and answer.text == "late"


def _answer(name: str) -> Handler:
    async def answer(request: Request) -> Response:
        return PlainTextResponse(f"{name} {sorted(request.path_params.items())}")

    return answer


@pytest.mark.parametrize(("templates", "tree"), [
    # A template before a literal of the same segment: the tree tries the parameter first.
    (["/a/{x}/c", "/a/b/c", "/a/b/{y}"], True),
    # A literal, then a parameter, then the literal's subtree again: no order of the branches of
    # `/a/` is the routes' order, so they are scanned in turn.
    (["/a/b/c", "/a/{x}/c", "/a/b/{y}"], False),
    (["/a/{rest:path}", "/a/b", "/a/{x}"], True),
    (["/a/{n:int}", "/a/{x}"], False),  # a convertor the tree does not have
])
@pytest.mark.parametrize("path", ["/a/b/c", "/a/q/c", "/a/b/z", "/a/b", "/a/7", "/a/", "/a/b/c/d", "/a"])
def test_any_order_of_routes_is_routed_as_a_scan_of_them_would(templates: list[str], tree: bool, path: str) -> None:
    router = ResourceRouter([Resource(t, {"GET": _answer(t)}) for t in templates], redirect_slashes=False)
    assert (router.tree() is not None) is tree
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    scanned = next((route for route in router.routes if route.matches(scope)[0] is not Match.NONE), None)
    with TestClient(router) as client:
        answer = client.get(path)
    if scanned is None:
        assert answer.status_code == 404
    else:
        assert isinstance(scanned, Route)
        expected = scanned.matches(scope)[1]["path_params"]
        assert answer.text == f"{scanned.path} {sorted(expected.items())}"
