"""Fuzzing: schemathesis drives the live app (on a real Redis) from the app's own OpenAPI document.

Every operation of both APIs gets schemathesis' example, coverage and fuzzing phases, positive
and negative data, with a fixed seed and example budget, so a run is repeatable and bounded in
time. Checks: every built-in response check (status codes, content types, headers and bodies
conform to the document, invalid data is refused, unsupported methods are 405 with `Allow`), and
no 5xx at all except the documented GMS 500 "Could not read JSON".

It runs twice: authentication off, then on (fewer examples; the document then declares HTTP
Basic, and schemathesis also checks that every protected operation refuses a request without
the pair or with a wrong one).

Random ids never name anything, so path parameters are sometimes swapped for ones that exist:
the hook draws a marker, and the test replaces it with a fresh service (with storage keys, a
state and a task), customer profile or interaction just before the call, so deletes in one case
cannot starve the next.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import redis
import schemathesis
from schemathesis.python import asgi
from starlette.applications import Starlette

from gmsd.config import SAMPLE_CONFIG, parse_config
from gmsd.main import create_app
from gmsd.settings import Settings
from gmsd.web.auth import load_credentials
from tests.conftest import RedisServer

SEED = 20260601
# Per operation and fuzzing phase; the example and coverage phases add a fixed number each. Both
# runs together stay within about two minutes on 2 cores.
EXAMPLES = {"open": 100, "authenticated": 10}
USERNAME, PASSWORD = "fuzz", "fuzz-pässword"

GMS = "/genesys/1/service"
STORAGE = "/genesys/1/storage"  # reads JSON with the same rules, the documented 500 included
# The access-number built-ins, on a pool that does not lock (the fuzzer's creates never exhaust it).
ACCESS_CONFIG = """
[resources.DNIS]
numbers = ["8003449999", "8003449998"]
locking = false

[services.access]
_service = "request-interaction"

[services.grant]
_service = "request-access"

[services.match]
_service = "match-interaction"
"""
CS = "/genesys/1/cs"
# Markers the hook draws (path parameters are percent-encoded after the hooks: plain ASCII only).
GMS_MARK = "LIVE-GMS-SERVICE"
CS_MARK = "LIVE-CS-SERVICE"
PROFILE_MARK = "LIVE-PROFILE"
INTERACTION_MARK = "LIVE-INTERACTION"
CUSTOMER = "fuzz-customer"
CONTACT = "fuzz-contact"

def fuzz_config(run: str) -> Any:
    """schemathesis' configuration of one run: fixed seed and budget, the checks, the credentials."""
    config: dict[str, Any] = {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES[run], "deterministic": True, "database": "none", "mode": "all"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # Replaced by `no_server_error` below (which admits the documented GMS 500).
            "not_a_server_error": {"enabled": False},
            # Context Services answer an unknown (well-formed) id with 400 NotFoundException, as GMS does.
            "positive_data_acceptance": {"enabled": False},
        },
    }
    if run == "authenticated":
        config["auth"] = {"basic": {"username": USERNAME, "password": PASSWORD}}
    return schemathesis.Config.from_dict(config)


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except the documented GMS 500 for malformed JSON."""
    if response.status_code < 500:
        return None
    body = response.json() if response.headers.get("content-type", [""])[0].startswith("application/json") else {}
    documented = (response.status_code == 500 and case.operation.path.startswith((GMS, STORAGE))
                  and str(body.get("message", "")).startswith("Could not read JSON"))
    # The documented 503 of a resource group whose numbers are all reserved.
    documented = documented or (response.status_code == 503 and case.operation.path == GMS + "/{name}"
                                and str(body.get("message", "")).startswith("no access number available"))
    if documented:
        return None
    raise AssertionError(f"{response.status_code} from {case.method} {case.formatted_path}: {response.text[:500]}")


class Live:
    """Creates the services that marked path parameters stand for."""

    def __init__(self, app: Starlette, authenticated: bool) -> None:
        self.http = asgi.get_client(app)
        self.profiles_ready = False
        if authenticated:
            self.http.auth = (USERNAME, PASSWORD)

    def gms_service(self) -> str:
        created = self.http.post(f"{GMS}/storage", data={"language": "french"},
                                 files={"photo": ("p.png", b"\x89PNG-bytes", "image/png")})
        assert created.status_code == 200, created.text
        return str(created.json()["id"])

    def cs_service(self) -> str:
        started = self.http.post(f"{CS}/services/start", json={"customer_id": CUSTOMER, "contact_key": CONTACT,
                                                               "service_type": "fuzz", "level": 3})
        assert started.status_code == 201, started.text
        service_id = str(started.json()["service_id"])
        state = self.http.post(f"{CS}/services/{service_id}/states/start", json={"state_type": "s"})
        task = self.http.post(f"{CS}/services/{service_id}/tasks/start", json={"task_type": "t", "state_id": 1})
        assert (state.json(), task.json()) == ({"state_id": 1}, {"task_id": 2})
        return service_id

    def profile(self) -> str:
        """A fresh customer profile (with a Phone record while no case has deleted that extension)."""
        if not self.profiles_ready:
            self.profiles_ready = True
            self.http.post(f"{CS}/metadata/profiles/extensions", json={
                "name": "Phone", "type": "multi-valued", "unique": ["PhoneNumber"],
                "attributes": [{"name": "PhoneNumber", "type": "string"}, {"name": "kind", "type": "string"}]})
            self.http.post(f"{CS}/metadata/identification-keys",
                           json={"name": "idPhone", "source": "Phone", "attributes": ["PhoneNumber"]})
        created = self.http.post(f"{CS}/profiles", json={"FirstName": "Fuzz", "EmailAddress": ["f@z", "g@z"]})
        assert created.status_code == 201, created.text
        customer_id = str(created.json()["customer_id"])
        self.http.post(f"{CS}/profiles/{customer_id}/extensions", json={"Phone": [{"PhoneNumber": "1"}]})
        return customer_id

    def interaction(self) -> str:
        created = self.http.post(f"{CS}/interactions", json={"media_type": "chat", "customer_id": CUSTOMER,
                                                             "plain_text": "hi", "structured_text": "<p>hi</p>",
                                                             "binary_content": "AAEC"})
        assert created.status_code == 201, created.text
        return str(created.json()["interaction_id"])

    def fill(self, case: Any) -> None:
        """Replace the markers in a case's path parameters by fresh services, profiles, interactions."""
        for name, value in list((case.path_parameters or {}).items()):
            if value == GMS_MARK:
                case.path_parameters[name] = self.gms_service()
            elif value == CS_MARK:
                case.path_parameters[name] = self.cs_service()
            elif value == PROFILE_MARK:
                case.path_parameters[name] = self.profile()
            elif value == INTERACTION_MARK:
                case.path_parameters[name] = self.interaction()


def candidates(method: str, path: str, name: str) -> list[str]:
    """Values of a path parameter that name something live (besides the generated one)."""
    if path.startswith(STORAGE):  # a service id is also a storage area id; POST's `{id}`/`{key}` is a ttl
        if method == "POST" and (name == "key" or (name == "id" and path == STORAGE + "/{id}")):
            return ["600"]
        return {"id": [GMS_MARK], "area": [GMS_MARK], "key": ["language", "photo"]}.get(name, [])
    if path.startswith(GMS):
        if name == "name":
            return ["storage", "request-interaction", "access", "grant", "match"] if method == "POST" else [GMS_MARK]
        return {"id": [GMS_MARK], "key": ["language", "photo"], "request": ["update"]}.get(name, [])
    if path.startswith((CS + "/profiles", CS + "/metadata", CS + "/interactions")) or path.endswith("/interactions"):
        return {"customer_id": [PROFILE_MARK, CUSTOMER], "src_id": [PROFILE_MARK], "ext": ["Phone"],
                "name": ["Phone", "idPhone"], "interaction_id": [INTERACTION_MARK],
                "service_id": [CS_MARK]}.get(name, [])
    return {"id": [CS_MARK], "state_id": ["1"], "task_id": ["2"], "customer_id": [CUSTOMER],
            "contact_key": [CONTACT]}.get(name, [])


@pytest.fixture(scope="module", params=["open", "authenticated"])
def api_schema(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Any]:
    """The document as the live app serves it, with the hooks that point ids at live services."""
    redis.Redis(port=redis_server.port).flushall()
    run = request.param
    exports = Path(tempfile.mkdtemp())  # the file exports the fuzzing asks for: not into the checkout
    config = parse_config(SAMPLE_CONFIG + ACCESS_CONFIG + f'[context_services]\nexport_dir = "{exports}"\n', "<fuzz>")
    credentials = None
    if run == "authenticated":  # `request-interaction` has a pair of its own: the global one is refused there
        path = Path(tempfile.mkdtemp()) / "credentials.toml"
        path.write_text('[services.request-interaction]\nusername = "ri"\npassword = "ri-password"\n')
        credentials = load_credentials(config, {"GMSD_AUTH_USERNAME": USERNAME, "GMSD_AUTH_PASSWORD": PASSWORD,
                                                "GMSD_AUTH_FILE": str(path)})
    app = create_app(Settings(redis_server.url, config, credentials=credentials))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=fuzz_config(run))

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        # A state named in a body is sometimes the live service's state 1. Only a well-typed id
        # is replaced: a negative case's broken one must stay broken.
        def valid_id(holder: Any) -> bool:
            value = holder.get("state_id") if isinstance(holder, dict) else None
            return isinstance(value, int) and not isinstance(value, bool)

        if isinstance(body, dict) and valid_id(body.get("from")):
            return st.sampled_from([body, {**body, "from": {**body["from"], "state_id": 1}}])
        if valid_id(body):
            return st.sampled_from([body, {**body, "state_id": 1}])
        return st.just(body)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        operation = context.operation
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries({
            name: st.sampled_from([value, *candidates(operation.method.upper(), operation.path, name)])
            for name, value in path_parameters.items()
        })

    schema.live = Live(app, credentials is not None)
    yield schema
    asgi.shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_keeps_to_the_document(case: Any, api_schema: Any) -> None:
    api_schema.live.fill(case)
    case.call_and_validate(additional_checks=[no_server_error])
