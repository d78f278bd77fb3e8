"""The console's HTTP side through the real ASGI app, on every backend: its two read-only JSON
endpoints, its shipped files with their security headers, and the Basic authentication it shares
with the APIs (the API reference stays open, like /openapi.json)."""

from __future__ import annotations

import re

import pytest

from gmsd.console.inventory import MAX_LISTED_FILES
from gmsd.console.routes import CONSOLE_FILES, CONTENT_SECURITY_POLICY, DOCS_FILES
from tests.conftest import AppFactory

GMS = "/genesys/1/service"
CONFIG = """
[services.storage]
_ttl = 600

[services.callback]
_type = "ors"
_service = "http://127.0.0.1:9/callback"
_ttl = 120
"""
AUTH = {"GMSD_AUTH_USERNAME": "gmsd", "GMSD_AUTH_PASSWORD": "s3cret"}


def test_configured_services_are_listed_by_name(make_client: AppFactory) -> None:
    answer = make_client(CONFIG).get("/console/api/services")
    assert answer.status_code == 200
    assert answer.json() == [{"name": "callback", "type": "ors", "ttl": 120},
                             {"name": "storage", "type": "builtin", "ttl": 600}]


def test_storage_inventory_lists_files_with_type_and_size_and_the_time_left(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    created = client.post(f"{GMS}/storage", data={"language": "french"},
                          files={"photo": ("me.png", photo, "image/png"), "note": ("n.txt", b"hi", "text/plain")})
    sid = created.json()["id"]
    inventory = client.get(f"/console/api/services/{sid}/storage")
    assert inventory.status_code == 200
    body = inventory.json()
    assert body["service_id"] == sid and body["name"] == "storage"
    assert 590_000 < body["expires_in"] <= 600_000
    assert body["file_count"] == 2
    assert body["files"] == [
        {"key": "note", "content_type": "text/plain", "size": 2, "filename": "n.txt"},
        {"key": "photo", "content_type": "image/png", "size": len(photo), "filename": "me.png"},
    ]
    # Strings stay the GMS API's business; after a delete the file is gone from the inventory too.
    assert client.get(f"{GMS}/{sid}/storage").json() == {"language": "french"}
    assert client.delete(f"{GMS}/{sid}/storage/photo").status_code == 200
    assert [f["key"] for f in client.get(f"/console/api/services/{sid}/storage").json()["files"]] == ["note"]
    assert client.put(f"{GMS}/{sid}", json={"ttl": 7200}).status_code == 200
    assert client.get(f"/console/api/services/{sid}/storage").json()["expires_in"] > 7_000_000


def test_storage_inventory_of_an_unknown_service_is_404_with_a_message(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    for sid in ("0f0e0d0c-0b0a-4999-8888-777766665555", "not-an-id"):
        answer = client.get(f"/console/api/services/{sid}/storage")
        assert answer.status_code == 404
        assert answer.json() == {"message": f"service {sid!r} not found"}


def test_storage_inventory_lists_at_most_the_limit_but_counts_every_file(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    sid = client.post(f"{GMS}/storage").json()["id"]
    many = MAX_LISTED_FILES + 5
    for start in range(0, many, 500):  # under the default 1000 fields per request
        files = {f"f{i:05d}": (f"{i}.bin", b"x" * (i % 7), "application/octet-stream")
                 for i in range(start, min(start + 500, many))}
        assert client.post(f"{GMS}/{sid}/storage", files=files).status_code == 200
    body = client.get(f"/console/api/services/{sid}/storage").json()
    assert body["file_count"] == many
    assert len(body["files"]) == MAX_LISTED_FILES
    assert len({f["key"] for f in body["files"]}) == MAX_LISTED_FILES
    assert all(f["size"] == int(f["key"][1:]) % 7 for f in body["files"])


@pytest.mark.parametrize(("path", "content_type"), [
    ("/console/", "text/html; charset=utf-8"),
    ("/console/console.js", "text/javascript; charset=utf-8"),
    ("/console/console.css", "text/css; charset=utf-8"),
    ("/console/favicon.svg", "image/svg+xml"),
    ("/docs", "text/html; charset=utf-8"),
    ("/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("/docs/docs.js", "text/javascript; charset=utf-8"),
])
def test_shipped_files_carry_a_strict_policy_and_their_type(make_client: AppFactory, path: str,
                                                             content_type: str) -> None:
    answer = make_client(CONFIG).get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    policy = answer.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in policy and "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = make_client(CONFIG).get(path, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_pages_have_no_inline_script_style_or_handler() -> None:
    pages = [CONSOLE_FILES["index.html"].data.decode(), DOCS_FILES["index.html"].data.decode()]
    for page in pages:
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []  # every script is a file
        assert "<style" not in page and " style=" not in page
        assert re.search(r"\son[a-z]+=", page) is None  # no onclick= and friends
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere (no CDN)
    for name, shipped in CONSOLE_FILES.items():
        if name.endswith(".js"):
            text = shipped.data.decode()
            assert "innerHTML" not in text and "eval(" not in text, name


def test_unknown_files_are_404_and_the_bare_console_path_redirects(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    for path in ("/console/nope.js", "/console/../main.py", "/docs/nope.css", "/console/api/other"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json() == {"message": "not found"}
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/console/")


def test_the_console_takes_the_api_credentials_and_the_reference_stays_open(make_client: AppFactory) -> None:
    client = make_client(CONFIG, auth=AUTH)
    for path in ("/console/", "/console/console.js", "/console/api/services",
                 "/console/api/services/0f0e0d0c-0b0a-4999-8888-777766665555/storage"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == 'Basic realm="gmsd"'
        assert "message" in refused.json()
        assert client.get(path, auth=("gmsd", "wrong")).status_code == 401
        assert client.get(path, auth=("gmsd", "s3cret")).status_code in (200, 404), path
    for path in ("/docs", "/docs/swagger-ui.css", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_openapi_describes_the_console_endpoints(make_client: AppFactory) -> None:
    document = make_client(CONFIG, auth=AUTH).get("/openapi.json").json()
    services = document["paths"]["/console/api/services"]["get"]
    assert services["tags"] == ["Console"] and services["security"] == [{"basic": []}]
    schema = services["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["items"]["$ref"].endswith("/ConfiguredService")
    assert set(document["components"]["schemas"]["ConfiguredService"]["properties"]) == {"name", "type", "ttl"}
    inventory = document["paths"]["/console/api/services/{id}/storage"]["get"]
    assert {"200", "401", "404", "503"} <= set(inventory["responses"])
    assert "security" not in document["paths"]["/docs"]["get"]

