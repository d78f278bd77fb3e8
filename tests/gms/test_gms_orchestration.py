"""`ors` services call their orchestration URL over real HTTP (a local server started here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory, Backend
from tests.support.orchestration import Orchestration

BASE = "/genesys/1/service"


@pytest.fixture
def orchestration() -> Iterator[Orchestration]:
    server = Orchestration()
    yield server
    server.close()


@pytest.fixture
def gms(make_client: AppFactory, orchestration: Orchestration) -> TestClient:
    return make_client(f"""
[orchestration]
timeout = 0.5

[services.callback]
_type = "ors"
_service = "{orchestration.url}/callback"
_ttl = 600

[services.plain]
_ttl = 600
""")


def test_create_calls_the_orchestration_with_control_parameters(
    gms: TestClient, orchestration: Orchestration, backend: Backend
) -> None:
    orchestration.answers["/callback"] = (200, b'{"_access_number": "8003449999", "_id": "ignored"}', 0)
    response = gms.post(f"{BASE}/callback", data={"_phone_number": "6504669999", "language": "french"})
    assert response.status_code == 200
    body = response.json()
    sid = body["id"]
    assert body == {"_id": sid, "id": sid, "_access_number": "8003449999"}
    path, sent = orchestration.received[0]
    assert path == "/callback"
    assert sent == {"_phone_number": "6504669999", "_id": sid, "_data_id": sid}
    # User data is stored before the orchestration hears of it (it may read it back).
    assert gms.get(f"{BASE}/{sid}/storage").json() == {"language": "french"}


@pytest.mark.parametrize("status,body", [(500, b'{"error": "x"}'), (200, b"<html>not json</html>"), (200, b"[1]")])
def test_failing_orchestration_is_502_and_keeps_nothing(
    gms: TestClient, orchestration: Orchestration, backend: Backend, status: int, body: bytes
) -> None:
    orchestration.answers["/callback"] = (status, body, 0)
    response = gms.post(f"{BASE}/callback", data={"language": "french"})
    assert response.status_code == 502
    assert "orchestration" in response.json()["message"]
    assert backend.sync.dbsize() == 0


def test_slow_orchestration_is_504_and_keeps_nothing(
    gms: TestClient, orchestration: Orchestration, backend: Backend
) -> None:
    orchestration.answers["/callback"] = (200, b"{}", 1.5)
    response = gms.post(f"{BASE}/callback", data={"language": "french"})
    assert response.status_code == 504
    assert backend.sync.dbsize() == 0


def test_unreachable_orchestration_is_502(make_client: AppFactory, backend: Backend) -> None:
    from tests.conftest import free_port

    gms = make_client(f'[services.cb]\n_type = "ors"\n_service = "http://127.0.0.1:{free_port()}/x"\n')
    response = gms.post(f"{BASE}/cb", data={"a": "1"})
    assert response.status_code == 502
    assert backend.sync.dbsize() == 0


def test_service_specific_request_is_forwarded(gms: TestClient, orchestration: Orchestration) -> None:
    sid = gms.post(f"{BASE}/callback").json()["id"]
    orchestration.answers["/callback/cancel"] = (200, b'{"status": "cancelled", "n": 3}', 0)
    response = gms.post(f"{BASE}/{sid}/cancel", data={"reason": "busy", "_desired_time": "later"})
    assert response.status_code == 200
    assert response.json() == {"status": "cancelled", "n": 3}
    path, sent = orchestration.received[-1]
    assert path == "/callback/cancel"
    assert sent == {"reason": "busy", "_desired_time": "later", "_id": sid, "_data_id": sid}


def test_forwarded_request_failures(gms: TestClient, orchestration: Orchestration) -> None:
    sid = gms.post(f"{BASE}/callback").json()["id"]
    orchestration.answers["/callback/slow"] = (200, b"{}", 1.5)
    orchestration.answers["/callback/broken"] = (503, b"{}", 0)
    assert gms.post(f"{BASE}/{sid}/slow").status_code == 504
    assert gms.post(f"{BASE}/{sid}/broken").status_code == 502
    # The service itself is untouched by failed requests.
    assert gms.get(f"{BASE}/{sid}/storage").status_code == 200


def test_update_is_local_even_for_ors_services(gms: TestClient, orchestration: Orchestration) -> None:
    sid = gms.post(f"{BASE}/callback").json()["id"]
    calls = len(orchestration.received)
    assert gms.post(f"{BASE}/{sid}/update", data={"k": "v"}).status_code == 200
    assert len(orchestration.received) == calls
    assert gms.get(f"{BASE}/{sid}/storage").json() == {"k": "v"}


def test_builtin_service_rejects_other_requests(gms: TestClient) -> None:
    sid = gms.post(f"{BASE}/plain").json()["id"]
    assert gms.post(f"{BASE}/{sid}/cancel").status_code == 400
