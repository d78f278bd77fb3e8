"""The built-in access-number services (request-interaction, request-access, match-interaction) on
every backend: pools, locking, expiry, codes, matching, and the IVR flow ending in a Storage API read."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.errors import ConfigError
from gmsd.keys import access_pool, gms_service
from tests.conftest import AppFactory, Backend

SERVICE = "/genesys/1/service"
STORAGE = "/genesys/1/storage"

CONFIG = """
[resources.DNIS]
numbers = ["8003449999", "8003449998"]
allocation = "round-robin"
locking = true
booking_expiration_timeout = 30

[resources.shared]
numbers = ["8005550100"]
locking = false

[resources.tiny]
numbers = ["8005550199"]

[services.request-interaction]
_type = "builtin"
_service = "request-interaction"
_ttl = 600

[services.ri-code]
_service = "request-interaction"
_provide_code = true
_access_code_length = 4

[services.ri-shared]
_service = "request-interaction"
_resource_group = "shared"
_provide_code = true

[services.ri-tiny]
_service = "request-interaction"
_resource_group = "tiny"
_booking_expiration_timeout = 5

[services.ri-plain]
_service = "request-interaction"

[services.request-access]
_service = "request-access"

[services.ra-slow]
_service = "request-access"
_booking_expiration_timeout = 300

[services.match-interaction]
_service = "match-interaction"

[services.match-all]
_service = "match-interaction"
_return_multiple_matches = true

[services.app]
_ttl = 600
"""


@pytest.fixture
def gms(make_client: AppFactory) -> TestClient:
    return make_client(CONFIG)


def post(client: TestClient, name: str, status: int = 200, **data: str) -> dict[str, object]:
    response = client.post(f"{SERVICE}/{name}", data=data)
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    return body


def match(client: TestClient, status: int = 200, name: str = "match-interaction", **data: str) -> dict[str, object]:
    return post(client, name, status, **data)


# --- request-interaction --------------------------------------------------------------------

def test_request_interaction_stores_data_and_answers_access_information(gms: TestClient) -> None:
    answer = post(gms, "request-interaction", firstname="Ada", _phone_number="6504669999")
    assert answer["_id"] == answer["id"]
    assert answer["_access_number"] in ("8003449999", "8003449998")
    assert answer["_expiration_time"] == 30
    assert "_access_code" not in answer
    assert gms.get(f"{SERVICE}/{answer['id']}/storage").json() == {"firstname": "Ada"}


def test_a_code_has_the_configured_digits_or_the_requested_ones(gms: TestClient) -> None:
    coded = post(gms, "ri-code")
    assert isinstance(coded["_access_code"], str)
    assert len(coded["_access_code"]) == 4 and coded["_access_code"].isdigit()
    six = post(gms, "request-interaction", _provide_code="true")
    assert len(str(six["_access_code"])) == 6
    eight = post(gms, "ri-shared", _access_code_length="8",
                 _booking_expiration_timeout="120")
    assert (len(str(eight["_access_code"])), eight["_expiration_time"]) == (8, 120)


def test_round_robin_locking_gives_each_number_once_then_503_keeping_nothing(gms: TestClient,
                                                                              backend: Backend) -> None:
    first = post(gms, "request-interaction", a="1")
    second = post(gms, "request-interaction", a="2")
    assert [first["_access_number"], second["_access_number"]] == ["8003449999", "8003449998"]
    keys_before = backend.sync.dbsize()
    refused = gms.post(f"{SERVICE}/request-interaction", data={"a": "3"})
    assert refused.status_code == 503
    assert refused.json() == {"message": "no access number available in resource group DNIS"}
    assert backend.sync.dbsize() == keys_before  # no service kept


def test_match_releases_the_number_to_the_pool(gms: TestClient) -> None:
    first = post(gms, "request-interaction")
    post(gms, "request-interaction")
    post(gms, "request-interaction", 503)
    assert match(gms, _access_number=str(first["_access_number"])) == {"_id": first["id"], "_data_id": first["id"]}
    again = post(gms, "request-interaction")
    assert again["_access_number"] == first["_access_number"]
    # Released: the same number does not match the old service again.
    match(gms, 200, _access_number=str(first["_access_number"]))  # the new reservation
    match(gms, 404, _access_number=str(first["_access_number"]))


def test_an_expired_booking_returns_the_number_and_the_service_stays(gms: TestClient, backend: Backend) -> None:
    held = post(gms, "ri-tiny", note="kept")
    assert held["_expiration_time"] == 5
    post(gms, "ri-tiny", 503)
    time.sleep(5.3)
    again = post(gms, "ri-tiny")
    assert again["_access_number"] == held["_access_number"]
    assert gms.get(f"{SERVICE}/{held['id']}/storage").json() == {"note": "kept"}
    # The pool's keys expire with its last reservation.
    assert 0 < backend.sync.pttl(access_pool("tiny")[1]) <= 5_000
    # Only the live reservation matches.
    assert match(gms, _access_number="8005550199")["_id"] == again["id"]


def test_without_locking_a_number_serves_many_with_distinct_codes(gms: TestClient) -> None:
    answers = [post(gms, "ri-shared", who=str(i)) for i in range(20)]
    assert {a["_access_number"] for a in answers} == {"8005550100"}
    assert len({a["_access_code"] for a in answers}) == 20
    # Each code finds its own service.
    for a in answers[:3]:
        found = match(gms, _access_number="8005550100", _access_code=str(a["_access_code"]), _return_user_data="true")
        assert found["_id"] == a["id"]
        assert found["who"] == gms.get(f"{SERVICE}/{a['id']}/storage").json()["who"]


def test_bad_parameters_are_400_and_keep_nothing(gms: TestClient, backend: Backend) -> None:
    for data in ({"_resource_group": "nope"}, {"_booking_expiration_timeout": "4"},
                 {"_booking_expiration_timeout": "1801"}, {"_provide_code": "true", "_access_code_length": "x"},
                 {"_ttl": "-1"}):
        response = gms.post(f"{SERVICE}/ri-plain", data=data)
        assert response.status_code == 400, data
        assert "message" in response.json()
    assert backend.sync.dbsize() == 0


def test_service_options_override_request_parameters(gms: TestClient, backend: Backend) -> None:
    # ri-code's table says 4 digits; the request's 9 does not win.
    assert len(str(post(gms, "ri-code", _access_code_length="9")["_access_code"])) == 4
    # request-interaction's table sets _ttl = 600: the request's _ttl does not win ...
    fixed = post(gms, "request-interaction", _ttl="5")
    assert 598_000 < backend.sync.pttl(gms_service(str(fixed["id"]))[0]) <= 600_000
    # ... where the table sets none, the request's _ttl is the service's lifetime.
    free = post(gms, "ri-tiny", _ttl="90")
    assert 88_000 < backend.sync.pttl(gms_service(str(free["id"]))[0]) <= 90_000


# --- request-access -------------------------------------------------------------------------

def test_request_access_gives_an_existing_service_a_number(gms: TestClient) -> None:
    service_id = str(post(gms, "app", firstname="Ada")["id"])
    answer = post(gms, "request-access", _id=service_id, _provide_code="true", _booking_expiration_timeout="60")
    assert answer["_id"] == answer["id"] == service_id
    assert answer["_expiration_time"] == 60
    assert len(str(answer["_access_code"])) == 6
    # A new reservation replaces the previous one: the pool still has one number free.
    again = post(gms, "request-access", _id=service_id)
    assert "_access_code" not in again
    post(gms, "request-interaction")
    post(gms, "request-interaction", 503)
    assert match(gms, _access_number=str(again["_access_number"]))["_id"] == service_id


def test_request_access_takes_the_request_s_booking_timeout_over_the_table_s(gms: TestClient) -> None:
    service_id = str(post(gms, "app")["id"])
    assert post(gms, "ra-slow", _id=service_id)["_expiration_time"] == 300
    assert post(gms, "ra-slow", _id=service_id, _booking_expiration_timeout="60")["_expiration_time"] == 60


def test_json_requests_are_read_with_the_gms_json_rules(gms: TestClient) -> None:
    response = gms.post(f"{SERVICE}/request-interaction", json={"_provide_code": True, "_access_code_length": 5,
                                                                  "cart": {"items": 2}})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["_access_code"]) == 5
    assert gms.get(f"{STORAGE}/{answer['id']}").json() == {"cart": "{items=2}"}


def test_request_access_needs_a_live_service(gms: TestClient) -> None:
    assert "_id" in str(match(gms, 400, name="request-access")["message"])
    match(gms, 404, name="request-access", _id="00000000-0000-4000-8000-000000000000")
    match(gms, 404, name="request-access", _id="not-an-id")


# --- match-interaction ----------------------------------------------------------------------

def test_match_by_number_number_and_code_number_and_phone(gms: TestClient) -> None:
    by_number = post(gms, "request-interaction")
    coded = post(gms, "request-interaction", _provide_code="true", _phone_number="6504669999")
    number, code = str(coded["_access_number"]), str(coded["_access_code"])
    match(gms, 404, _access_number=number)  # a reservation with a code needs the code
    match(gms, 404, _access_number=number, _access_code="x" + code)
    match(gms, 404, _access_number=number, _access_code=code, _phone_number="000")
    assert match(gms, _access_number=number, _access_code=code, _phone_number="6504669999")["_id"] == coded["id"]
    # Number + phone.
    phoned = post(gms, "request-interaction", _phone_number="4155550123")
    match(gms, 404, _access_number=str(phoned["_access_number"]), _phone_number="4155550000")
    assert match(gms, _access_number=str(phoned["_access_number"]), _phone_number="4155550123")["_id"] == phoned["id"]
    # Number alone.
    assert match(gms, _access_number=str(by_number["_access_number"])) == {
        "_id": by_number["id"], "_data_id": by_number["id"]}


def test_no_match_is_404_and_a_missing_number_400(gms: TestClient) -> None:
    assert match(gms, 404, _access_number="8003449999") == {"message": "no matching service"}
    assert match(gms, 404, _access_number="0000") == {"message": "no matching service"}
    assert "_access_number" in str(match(gms, 400)["message"])


def test_user_data_multiple_matches_and_delete(gms: TestClient) -> None:
    older = post(gms, "ri-shared", who="older")
    newer = post(gms, "ri-shared", who="newer")
    # A code-less match of a coded reservation never matches; codes differ, so ask one by one.
    found = match(gms, _access_number="8005550100", _access_code=str(newer["_access_code"]), _return_data="true",
                  _delete_service="true")
    assert found == {"_id": newer["id"], "_data_id": newer["id"], "who": "newer"}
    assert gms.get(f"{SERVICE}/{newer['id']}/storage").status_code == 404
    plain = [post(gms, "request-interaction", n=str(i)) for i in range(2)]
    numbers = {str(p["_access_number"]) for p in plain}
    assert len(numbers) == 2
    many = match(gms, name="match-all", _access_number=str(plain[0]["_access_number"]), _return_user_data="true")
    assert many == {"matches": [{"_id": plain[0]["id"], "_data_id": plain[0]["id"], "n": "0"}]}
    assert older["_access_code"] != newer["_access_code"]


def test_without_locking_the_most_recent_reservation_wins(make_client: AppFactory) -> None:
    client = make_client(CONFIG + '[services.ri-open]\n_service = "request-interaction"\n_resource_group = "shared"\n')
    first = post(client, "ri-open", who="first")
    time.sleep(0.01)
    second = post(client, "ri-open", who="second")
    all_of_them = match(client, name="match-all", _access_number="8005550100")
    assert [m["_id"] for m in all_of_them["matches"]] == [second["id"], first["id"]]  # type: ignore[index]
    match(client, 404, _access_number="8005550100")  # both released


def test_a_reservation_whose_service_is_gone_does_not_match(gms: TestClient) -> None:
    gone = post(gms, "request-interaction")
    assert gms.delete(f"{SERVICE}/{gone['id']}").status_code == 200
    match(gms, 404, _access_number=str(gone["_access_number"]))


def test_request_interaction_then_match_then_storage_read(gms: TestClient) -> None:
    """The IVR flow: the app stores its data and gets a number; the IVR matches the caller and
    reads the data with the Storage API."""
    created = gms.post(f"{SERVICE}/request-interaction", data={"firstname": "Ada", "reason": "billing"},
                       files={"photo": ("p.png", b"\x89PNG", "image/png")})
    assert created.status_code == 200
    access = created.json()
    matched = match(gms, _access_number=access["_access_number"])
    data_id = matched["_data_id"]
    assert gms.get(f"{STORAGE}/{data_id}").json() == {"firstname": "Ada", "reason": "billing"}
    assert gms.get(f"{STORAGE}/{data_id}/reason").json() == {"reason": "billing"}
    assert gms.get(f"{STORAGE}/{data_id}/binary/photo").content == b"\x89PNG"


def test_access_numbers_are_counted_for_operators(gms: TestClient) -> None:
    def counts() -> dict[str, float]:
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(gms.get("/metrics").text):
            for sample in family.samples:
                if sample.name == "gmsd_access_numbers_total":
                    found[sample.labels["result"]] = sample.value
        return found

    before = counts()
    assert set(before) == {"reserved", "exhausted", "matched", "unmatched"}
    held = post(gms, "ri-tiny")
    post(gms, "ri-tiny", 503)
    match(gms, _access_number=str(held["_access_number"]))
    match(gms, 404, _access_number=str(held["_access_number"]))
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {"reserved": 1, "exhausted": 1, "matched": 1, "unmatched": 1}


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    ('[resources.DNIS]\nnumbers = []\n', "resources.DNIS.numbers"),
    ('[resources.DNIS]\nnumbers = ["1", "1"]\n', "already in resources.DNIS"),
    ('[resources.A]\nnumbers = ["1"]\n[resources.B]\nnumbers = ["1"]\n', "already in resources.A"),
    ('[resources."a{b}"]\nnumbers = ["1"]\n', "group name"),
    ('[resources.DNIS]\nnumbers = ["1"]\nbooking_expiration_timeout = 2\n', "booking_expiration_timeout"),
    ('[resources.DNIS]\nnumbers = ["1"]\nallocation = "lottery"\n', "allocation"),
    ('[services.x]\n_service = "request-interaction"\n_resource_group = "none"\n', "no [resources.none]"),
    ('[services.x]\n_service = "request-interaction"\n_access_code_length = 11\n', "_access_code_length"),
    ('[services.x]\n_service = "match-interaction"\n_return_user_data = "yes"\n', "true or false"),
    ('[services.x]\n_service = "match-interaction"\n_provide_code = true\n', "not an option"),
])
def test_bad_pool_configuration_stops_start_up(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace(".", r"\.")):
        parse_config(text, "gmsd.toml")


def test_numbers_may_be_written_as_toml_integers() -> None:
    config = parse_config("[resources.DNIS]\nnumbers = [8003449999, \"+18003449998\"]\n", "gmsd.toml")
    assert config.resources["DNIS"].access_numbers == ["8003449999", "+18003449998"]
