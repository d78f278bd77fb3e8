"""Context Services service lifecycle through HTTP, on fakeredis and on a real Redis."""

from __future__ import annotations

import calendar
import time

from starlette.testclient import TestClient

from gmsd.backend.connect import connect
from gmsd.config import SAMPLE_CONFIG, parse_config
from gmsd.cs.models import RESERVED_NAMES
from gmsd.main import create_app
from gmsd.settings import Settings
from tests.conftest import AppFactory, Backend, free_port
from tests.support.cs_support import (
    CS,
    TIMESTAMP,
    assert_error,
    conversation_keys,
    get,
    post_ok,
    start_service,
    start_state,
    start_task,
)

ATTACHED = {
    "RelatedOffersService": [
        {"offer_name": "VIP credit card black ed.", "type": 9, "rate": 1.25, "ok": True},
        {"offer_name": "life insurance", "type": 3, "ok": False, "notes": None},
    ],
    "FeedbackState": {"FeedbackType": "survey", "rating": 7, "nested": {"deep": [1, [2, 3], {"x": -1.5e-3}]}},
    "count": 12345678901234567,
    "flag": True,
    "label": "plain",
    "nothing": None,
}


def test_start_answers_201_with_location_and_stores_every_event_field(client: TestClient) -> None:
    sid = start_service(
        client, customer_id="C-1", contact_key="408-832-7799", service_type="MyService1",
        interaction_id="123ABC", session_id="s-9", media_type="voice", application_type="App_type_1",
        application_id=40, resource_type=12, resource_id=1183, est_duration=60,
        timestamp="2026-01-02T03:04:05.678Z",
    )
    prefix, _, rest = sid.partition("-")
    assert 0 <= int(prefix) < 1024 and len(rest) == 36
    service = get(client, f"/services/{sid}")
    assert service == {
        "service_id": sid, "service_type": "MyService1", "customer_id": "C-1", "contact_key": "408-832-7799",
        "started": {"timestamp": "2026-01-02T03:04:05.678Z", "interaction_id": "123ABC", "session_id": "s-9",
                    "media_type": "voice", "application_type": "App_type_1", "application_id": 40,
                    "resource_type": 12, "resource_id": 1183},
        "est_duration": 60,
    }


def test_attached_data_round_trip_keeps_json_types(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-2", service_type=5, **ATTACHED)
    service = get(client, f"/services/{sid}")
    for key, value in ATTACHED.items():
        assert service[key] == value
    assert service["service_type"] == 5  # a number stays a number
    raw = client.get(f"{CS}/services/{sid}").content
    assert b'"count":12345678901234567' in raw  # big integers are not turned into floats


def test_type_fields_accept_numbers_or_strings_as_given(client: TestClient) -> None:
    as_text = start_service(client, customer_id="C-3", service_type="7", media_type="2", application_type=3.5)
    as_number = start_service(client, customer_id="C-3", service_type=7, media_type=2)
    assert get(client, f"/services/{as_text}")["service_type"] == "7"
    assert get(client, f"/services/{as_text}")["started"]["application_type"] == 3.5
    assert get(client, f"/services/{as_number}")["service_type"] == 7
    assert get(client, f"/services/{as_number}")["started"]["media_type"] == 2


def test_timestamps_default_to_server_time_and_are_normalised(client: TestClient) -> None:
    before = time.time()
    sid = start_service(client, contact_key="ck-ts")
    started = get(client, f"/services/{sid}")["started"]["timestamp"]
    assert TIMESTAMP.match(started)
    assert abs(calendar.timegm(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S")) - before) < 5
    other = start_service(client, contact_key="ck-ts", timestamp="2026-03-04T05:06:07+00:00")
    assert get(client, f"/services/{other}")["started"]["timestamp"] == "2026-03-04T05:06:07.000Z"
    # Years before 1000 keep four digits (glibc's strftime wrote `664-09-22…`).
    old = start_service(client, contact_key="ck-ts", timestamp="0664-09-21T23:10:35.65-21:35")
    assert get(client, f"/services/{old}")["started"]["timestamp"] == "0664-09-22T20:45:35.650Z"
    # Instants whose UTC year is not 1 to 9999 cannot be written back: refused (one was served as `10000-…`).
    for outside in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"):
        assert_error(client.post(f"{CS}/services/start", json={"contact_key": "ck-ts", "timestamp": outside}), 400,
                     "InvalidParameterException")
    assert_error(client.get(f"{CS}/services/anonymous/ck-ts", params={"started_to": "9999-12-31T23:59:59-23:59"}),
                 400, "InvalidParameterException")


def test_start_errors(client: TestClient) -> None:
    url = f"{CS}/services/start"
    assert_error(client.post(url, json={"service_type": "x"}), 400, "InvalidParameterException")
    assert_error(client.post(url, content=b"{not json"), 400, "InvalidParameterException")
    assert_error(client.post(url, content=b"[1, 2]"), 400, "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": 5}), 400, "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": "c", "est_duration": "long"}), 400,
                 "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": "c", "media_type": True}), 400, "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": "c", "timestamp": "yesterday"}), 400,
                 "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": "c", "ttl": -3}), 400, "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": ""}), 400, "InvalidParameterException")
    assert_error(client.post(url, json={"customer_id": "x" * 4097}), 400, "InvalidParameterException")


def test_reserved_names_are_not_attached_data(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-r", service_id="mine", started={"x": 1}, duration=3, kept=1)
    service = get(client, f"/services/{sid}")
    assert service["service_id"] == sid and "duration" not in service
    assert service["started"].keys() == {"timestamp"} and service["kept"] == 1
    assert "service_id" in RESERVED_NAMES


def test_unknown_service_is_400_not_found_everywhere(client: TestClient) -> None:
    unknown = "12-00000000-0000-4000-8000-000000000000"
    for bad in (unknown, "not-an-id", "5000-00000000-0000-4000-8000-000000000000"):
        assert_error(client.get(f"{CS}/services/{bad}"), 400, "NotFoundException")
        assert_error(client.post(f"{CS}/services/{bad}/end", json={}), 400, "NotFoundException")
        assert_error(client.delete(f"{CS}/services/{bad}"), 400, "NotFoundException")
        assert_error(client.put(f"{CS}/services/{bad}", json={"ttl": 10}), 400, "NotFoundException")
        assert_error(client.post(f"{CS}/customers/C/services/{bad}", json={}), 400, "NotFoundException")
        assert_error(client.post(f"{CS}/services/{bad}/states/start", json={}), 400, "NotFoundException")
        assert_error(client.post(f"{CS}/services/{bad}/tasks/start", json={}), 400, "NotFoundException")
        assert_error(client.get(f"{CS}/services/{bad}/states"), 400, "NotFoundException")
        assert_error(client.get(f"{CS}/services/{bad}/tasks/active"), 400, "NotFoundException")
        assert_error(client.put(f"{CS}/services/{bad}/extensions/x", json=1), 400, "NotFoundException")


def test_end_answers_204_then_409_and_cascades_with_the_same_timestamp(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-end", service_type="S")
    done = start_state(client, sid, state_type="first", timestamp="2026-01-01T00:00:00Z")
    post_ok(client, f"/services/{sid}/states/{done}/end", {"timestamp": "2026-01-01T00:00:01Z"})
    s1, s2 = start_state(client, sid, state_type="a"), start_state(client, sid, state_type="b")
    t1, t2 = start_task(client, sid, task_type="x", state_id=s1), start_task(client, sid, task_type="y")
    response = client.post(f"{CS}/services/{sid}/end", json={
        "timestamp": "2030-05-06T07:08:09.010Z", "disposition": 4, "disposition_desc": "resolved",
        "interaction_id": "end-1", "FeedbackEnd": {"rating": 9}, "label": "replaced"})
    assert response.status_code == 204 and response.content == b""
    service = get(client, f"/services/{sid}", active_states="true", completed_states="true",
                  active_tasks="true", completed_tasks="true")
    assert service["completed"] == {"timestamp": "2030-05-06T07:08:09.010Z", "interaction_id": "end-1"}
    assert service["disposition"] == 4 and service["disposition_desc"] == "resolved"
    assert service["FeedbackEnd"] == {"rating": 9}
    assert service["duration"] > 0
    assert service["active_states"] == [] and service["active_tasks"] == []
    completed = {s["state_id"]: s["completed"]["timestamp"] for s in service["completed_states"]}
    assert completed == {done: "2026-01-01T00:00:01.000Z", s1: "2030-05-06T07:08:09.010Z",
                         s2: "2030-05-06T07:08:09.010Z"}
    assert {t["task_id"]: t["completed"]["timestamp"] for t in service["completed_tasks"]} == {
        t1: "2030-05-06T07:08:09.010Z", t2: "2030-05-06T07:08:09.010Z"}
    assert_error(client.post(f"{CS}/services/{sid}/end", json={}), 409, "StateException")
    assert_error(client.post(f"{CS}/services/{sid}/end", content=b"{"), 400, "InvalidParameterException")


def test_end_event_attached_data_replaces_same_named_keys(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-rep", label="start", keep=[1, 2])
    post_ok(client, f"/services/{sid}/end", {"label": {"now": "an object"}})
    service = get(client, f"/services/{sid}")
    assert service["label"] == {"now": "an object"} and service["keep"] == [1, 2]


def test_delete_removes_the_conversation_and_its_index_entries(client: TestClient, backend: Backend) -> None:
    sid = start_service(client, customer_id="C-del", service_type="S")
    start_state(client, sid)
    start_task(client, sid)
    response = client.delete(f"{CS}/services/{sid}")
    assert response.status_code == 200 and response.json() == {}
    assert backend.sync.exists(*conversation_keys(sid)) == 0
    assert_error(client.get(f"{CS}/services/{sid}"), 400, "NotFoundException")
    assert get(client, "/customers/C-del/services") == []
    assert_error(client.delete(f"{CS}/services/{sid}"), 400, "NotFoundException")


def test_put_ttl_and_expiration_time_move_the_whole_conversation(client: TestClient, backend: Backend) -> None:
    sid = start_service(client, customer_id="C-ttl")
    start_state(client, sid)
    start_task(client, sid)
    keys = conversation_keys(sid)
    response = client.put(f"{CS}/services/{sid}", json={"ttl": 100})
    assert response.status_code == 200 and response.json() == {}
    ttls = [backend.sync.pttl(k) for k in keys]
    assert all(95_000 < t <= 100_000 for t in ttls), ttls
    assert len({backend.sync.pexpiretime(k) for k in keys}) == 1
    at = time.time() + 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + ".000Z"
    assert client.put(f"{CS}/services/{sid}", json={"expiration_time": stamp}).status_code == 200
    assert {backend.sync.pexpiretime(k) for k in keys} == {int(at) * 1000}
    assert client.put(f"{CS}/services/{sid}", json={"ttl": "2w"}).status_code == 200
    assert 14 * 86400_000 - 5000 < backend.sync.pttl(keys[0]) <= 14 * 86400_000
    assert_error(client.put(f"{CS}/services/{sid}", json={}), 400, "InvalidParameterException")
    assert_error(client.put(f"{CS}/services/{sid}", json={"expiration_time": "2001-01-01T00:00:00Z"}), 400,
                 "InvalidParameterException")
    assert_error(client.put(f"{CS}/services/{sid}", json={"ttl": "soon"}), 400, "InvalidParameterException")
    # found by fuzzing: past what Redis takes as an expiry (it refused: a 500); 100 years is the most
    for too_far in (3153600001, "95852312569y", "36501d", " 95337438764294406339134124\n"):
        assert_error(client.put(f"{CS}/services/{sid}", json={"ttl": too_far}), 400, "InvalidParameterException")
        assert_error(client.post(f"{CS}/services/start", json={"customer_id": "C-ttl", "ttl": too_far}), 400,
                     "InvalidParameterException")
        assert_error(client.post(f"{CS}/services/{sid}/end", json={"ttl": too_far}), 400, "InvalidParameterException")
    assert client.put(f"{CS}/services/{sid}", json={"ttl": "100y"}).status_code == 200
    # found by fuzzing: `ttl` wins, but a malformed `expiration_time` beside it is still refused
    assert_error(client.put(f"{CS}/services/{sid}", json={"ttl": 60, "expiration_time": "soon"}), 400,
                 "InvalidParameterException")
    assert_error(client.post(f"{CS}/services/{sid}/states/start", json={"ttl": 60, "expiration_time": "soon"}), 400,
                 "InvalidParameterException")
    past = {"ttl": 60, "expiration_time": "2001-01-01T00:00:00Z"}  # well-formed: `ttl` wins
    assert client.put(f"{CS}/services/{sid}", json=past).status_code == 200


def test_default_expiry_comes_from_configuration(make_client: AppFactory, backend: Backend) -> None:
    client = make_client('[context_services]\ndefault_ttl = "2h"\n')
    sid = start_service(client, customer_id="C-default")
    assert 2 * 3600_000 - 5000 < backend.sync.pttl(conversation_keys(sid)[0]) <= 2 * 3600_000
    short = start_service(client, customer_id="C-default", ttl=30)
    assert 25_000 < backend.sync.pttl(conversation_keys(short)[0]) <= 30_000


def test_expired_conversation_is_gone_everywhere(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-exp", ttl=1)
    start_state(client, sid)
    assert ids_of(get(client, "/customers/C-exp/services")) == [sid]
    time.sleep(1.1)
    assert_error(client.get(f"{CS}/services/{sid}"), 400, "NotFoundException")
    assert get(client, "/customers/C-exp/services") == []
    assert get(client, "/customers/C-exp/services/active") == []


def ids_of(services: list[dict[str, object]]) -> list[object]:
    return [s["service_id"] for s in services]


def test_extension_put_sets_attached_data_on_service_state_and_task(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-ext")
    state = start_state(client, sid)
    task = start_task(client, sid)
    assert client.put(f"{CS}/services/{sid}/extensions/Profile", json={"a": [1, {"b": False}]}).json() == {}
    assert client.put(f"{CS}/services/{sid}/states/{state}/extensions/Mood", json="happy").status_code == 200
    assert client.put(f"{CS}/services/{sid}/tasks/{task}/extensions/Score", json=9.5).status_code == 200
    assert get(client, f"/services/{sid}")["Profile"] == {"a": [1, {"b": False}]}
    assert get(client, f"/services/{sid}/states/{state}")["Mood"] == "happy"
    assert get(client, f"/services/{sid}/tasks/{task}")["Score"] == 9.5
    assert_error(client.put(f"{CS}/services/{sid}/extensions/x", content=b"{oops"), 400,
                 "InvalidParameterException")
    assert_error(client.put(f"{CS}/services/{sid}/extensions/started", json=1), 400, "InvalidParameterException")
    assert_error(client.put(f"{CS}/services/{sid}/states/99/extensions/x", json=1), 400, "NotFoundException")
    assert_error(client.put(f"{CS}/services/{sid}/tasks/abc/extensions/x", json=1), 400, "NotFoundException")
    assert client.put(f"{CS}/services/{sid}/other/1/extensions/x", json=1).status_code == 404


def test_extensions_filter_selects_attached_data(client: TestClient) -> None:
    sid = start_service(client, customer_id="C-sel", a=1, b=2, c=3)
    start_state(client, sid, state_type="s", x=1, y=2)
    start_task(client, sid, task_type="t", p=1, q=2)
    flags = {"active_states": "true", "active_tasks": "true"}
    full = get(client, f"/services/{sid}", **flags)
    assert (full["a"], full["active_states"][0]["y"], full["active_tasks"][0]["q"]) == (1, 2, 2)
    some = get(client, f"/services/{sid}", extensions="a,c,State.x,Task.q", **flags)
    assert {k for k in some if k in "abc"} == {"a", "c"}
    assert {"x", "y"} & some["active_states"][0].keys() == {"x"}
    assert {"p", "q"} & some["active_tasks"][0].keys() == {"q"}
    states_only = get(client, f"/services/{sid}", extensions="State.*", **flags)
    assert not {"a", "b", "c"} & states_only.keys() and {"x", "y"} <= states_only["active_states"][0].keys()
    assert {"a", "b", "c"} <= get(client, f"/services/{sid}", extensions="*").keys()
    assert {"x", "y"} & get(client, f"/services/{sid}/states/1", extensions="y").keys() == {"y"}


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    assert_error(client.get(f"{CS}/nothing/here"), 404, "ContextServicesException")
    assert_error(client.patch(f"{CS}/services/start"), 405, "ContextServicesException")
    assert client.patch(f"{CS}/services/start").headers["allow"] == "POST"
    # the URL of associate (POST): no list named `sideways`
    sideways = client.get(f"{CS}/customers/C/services/sideways")
    assert_error(sideways, 405, "ContextServicesException")
    assert sideways.headers["allow"] == "POST"
    # one path, several routes (one per method): `Allow` names them all
    wrong = client.patch(f"{CS}/services/1-{'0' * 8}-0000-0000-0000-{'0' * 12}")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, PUT, DELETE"


def test_unreachable_redis_answers_503_with_an_exception_class() -> None:
    config = parse_config(SAMPLE_CONFIG + "[redis]\ntimeout = 0.5\n", "<test>")
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", config.redis)  # nothing listens there
    with TestClient(create_app(Settings(None, config), dead)) as client:
        assert_error(client.post(f"{CS}/services/start", json={"customer_id": "c"}), 503,
                     "StorageUnavailableException")
        assert_error(client.get(f"{CS}/customers/c/services"), 503, "StorageUnavailableException")
