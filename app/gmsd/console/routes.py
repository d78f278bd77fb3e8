"""HTTP of the console: its pages and scripts (`/console/…`), the API reference (`/docs`), and the
console's two read-only JSON endpoints.

The files are read once at start-up from `static/` inside the package (the wheel ships them),
held in memory (under 2 MiB, most of it Swagger UI) and answered with a strict
Content-Security-Policy: scripts, styles and calls only from gmsd itself, nothing inline, no
framing. The console's paths need the same Basic credentials as the APIs (`gmsd.web.auth`);
`/docs`, like `/openapi.json`, is open.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response

from gmsd.console.inventory import Inventory
from gmsd.console.models import ConfiguredService, StorageInventory
from gmsd.errors import NotFound
from gmsd.web.openapi import JSON, Answer, Api, Param
from gmsd.web.paths import CONSOLE_PREFIX, DOCS_PATH
from gmsd.web.responses import GmsErrorBody, json_response
from gmsd.web.routing import Resource

# What every page and file of the console and the reference is answered with. `img-src data:`:
# Swagger UI's stylesheet draws its icons as data: images; nothing else is loosened.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",  # revalidate (ETag): a new gmsd version brings new files at once
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class ShippedFile:
    """One file of `static/`, in memory, with its type and entity tag."""

    data: bytes
    content_type: str
    etag: str

    def answer(self, request: Request) -> Response:
        """200 with the bytes, or 304 when the browser's copy is current."""
        headers = {**_SECURITY_HEADERS, "etag": self.etag, "content-type": self.content_type}
        if request.headers.get("if-none-match") == self.etag:
            return Response(None, 304, headers)
        return Response(self.data, 200, headers)


def shipped_files(folder: str) -> dict[str, ShippedFile]:
    """Every file of `static/<folder>/` with a known type, by its path below that folder."""
    found: dict[str, ShippedFile] = {}

    def walk(directory: Traversable, prefix: str) -> None:
        for entry in directory.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            suffix = entry.name[entry.name.rfind("."):] if "." in entry.name else ""
            if suffix in _TYPES:
                data = entry.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                found[prefix + entry.name] = ShippedFile(data, _TYPES[suffix], etag)

    walk(resources.files("gmsd.console") / "static" / folder, "")
    return found


CONSOLE_FILES = shipped_files("console")
DOCS_FILES = shipped_files("docs")

# --- what the OpenAPI document says ----------------------------------------------------------

_HTML = {"text/html": {"type": "string"}}
_FILE = {"*/*": {"type": "string"}}
_FILE_HEADERS = {"Content-Security-Policy": "scripts, styles and calls from gmsd only; nothing inline",
                 "ETag": "the file's entity tag (send it back as If-None-Match)"}
_SHIPPED = {200: Answer("the file", _FILE, _FILE_HEADERS), 304: Answer("the browser's copy is current")}
CONSOLE = Api("Console", GmsErrorBody, {
    "id": Param("id", "path", {"type": "string"}, "a GMS service id"),
    "file": Param("file", "path", {"type": "string"}, "a file of the console or the reference (`console.js`)"),
})


def _inventory(request: Request) -> Inventory:
    inventory: Inventory = request.app.state.console
    return inventory


@CONSOLE.operation("The configured services (name, type, TTL), by name",
                   answers={200: Answer("every `[services.<name>]`", {JSON: list[ConfiguredService]})})
async def configured_services(request: Request) -> Response:
    """GET /console/api/services: what `POST /genesys/1/service/{name}` can create."""
    return json_response(_inventory(request).configured_services())


@CONSOLE.operation("The files of a GMS service's storage (type, name, size) and its time left",
                   answers={200: Answer("the service's inventory", {JSON: StorageInventory})}, errors=(503,),
                   description="String keys and their values: `GET /genesys/1/service/{id}/storage`. At most "
                               "1000 files are listed; `file_count` counts them all.")
async def storage_inventory(request: Request) -> Response:
    """GET /console/api/services/{id}/storage."""
    return json_response(await _inventory(request).storage(request.path_params["id"]))


@CONSOLE.operation("The console: services, storage and journeys in a browser",
                   answers={200: Answer("the page", _HTML, _FILE_HEADERS), 304: Answer("current")})
async def console_page(request: Request) -> Response:
    """GET /console/: the console's one page (its scripts switch between the views)."""
    return CONSOLE_FILES["index.html"].answer(request)


@CONSOLE.operation("The console's address without its slash: a redirect to `/console/`",
                   answers={307: Answer("to `/console/`", {},
                                        {"Location": "`/console/`: a path, never the client's Host"})})
async def console_root(request: Request) -> Response:
    """GET /console: 307 to `/console/` (the page's relative links need the slash).

    The one redirect gmsd answers, to a fixed path of its own; no route redirects a trailing
    slash, and none writes the client's `Host` into a `Location`.
    """
    return Response(status_code=307, headers={"location": PREFIX + "/"})


@CONSOLE.operation("A script, stylesheet or image of the console", answers=_SHIPPED)
async def console_file(request: Request) -> Response:
    """GET /console/{file}: one shipped file; anything else is 404."""
    return _shipped(CONSOLE_FILES, request.path_params["file"]).answer(request)


@CONSOLE.operation("The interactive API reference, rendered from /openapi.json",
                   answers={200: Answer("the page", _HTML, _FILE_HEADERS), 304: Answer("current")})
async def docs_page(request: Request) -> Response:
    """GET /docs: Swagger UI (shipped in the package) on gmsd's own OpenAPI document."""
    return DOCS_FILES["index.html"].answer(request)


@CONSOLE.operation("A script or stylesheet of the API reference (Swagger UI)", answers=_SHIPPED)
async def docs_file(request: Request) -> Response:
    """GET /docs/{file}: one shipped file of the reference."""
    return _shipped(DOCS_FILES, request.path_params["file"]).answer(request)


def _shipped(files: dict[str, ShippedFile], name: str) -> ShippedFile:
    found = files.get(name)
    if found is None:
        raise NotFound("not found")
    return found


PREFIX = CONSOLE_PREFIX

# Concrete templates before templated ones: the first template a path fits is its resource.
routes = [
    Resource(PREFIX + "/api/services", {"GET": configured_services}),
    Resource(PREFIX + "/api/services/{id}/storage", {"GET": storage_inventory}),
    Resource(PREFIX, {"GET": console_root}),
    Resource(PREFIX + "/", {"GET": console_page}),
    Resource(PREFIX + "/{file:path}", {"GET": console_file}),
    Resource(DOCS_PATH, {"GET": docs_page}),
    Resource(DOCS_PATH + "/{file:path}", {"GET": docs_file}),
]
