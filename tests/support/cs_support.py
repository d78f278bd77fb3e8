"""Helpers of the Context Services tests (HTTP calls that must succeed, error checks, Redis views)."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from gmsd.keys import cs_conversation, cs_index, cs_partition, cs_service_partition

CS = "/genesys/1/cs"
EXCEPTIONS = "com.genesyslab.gsg.services.contextservices.exceptions."
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def start_service(client: TestClient, **body: Any) -> str:
    response = client.post(f"{CS}/services/start", json=body)
    assert response.status_code == 201, response.text
    service_id = str(response.json()["service_id"])
    assert response.headers["location"] == f"{CS}/services/{service_id}"
    return service_id


def start_state(client: TestClient, service_id: str, **body: Any) -> int:
    response = client.post(f"{CS}/services/{service_id}/states/start", json=body)
    assert response.status_code == 201, response.text
    state_id = int(response.json()["state_id"])
    assert response.headers["location"] == f"{CS}/services/{service_id}/states/{state_id}"
    return state_id


def start_task(client: TestClient, service_id: str, **body: Any) -> int:
    response = client.post(f"{CS}/services/{service_id}/tasks/start", json=body)
    assert response.status_code == 201, response.text
    task_id = int(response.json()["task_id"])
    assert response.headers["location"] == f"{CS}/services/{service_id}/tasks/{task_id}"
    return task_id


def post_ok(client: TestClient, path: str, body: Any = None, status: int = 204) -> None:
    response = client.post(CS + path, json=body)
    assert response.status_code == status, response.text


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(CS + path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def ids(services: list[dict[str, Any]]) -> list[str]:
    return [s["service_id"] for s in services]


def assert_error(response: Any, status: int, exception: str) -> dict[str, Any]:
    """A CS error: the status, a JSON body with a message and the exception class."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["exception"] == EXCEPTIONS + exception
    assert isinstance(body["message"], str) and body["message"]
    return body


def conversation_keys(service_id: str) -> tuple[str, str, str]:
    partition = cs_service_partition(service_id)
    assert partition is not None
    return cs_conversation(service_id, partition)


def index_members(sync: Any, owner: str, prefix: bytes) -> list[bytes]:
    """The index members under `prefix` in the partition of `owner` (read directly from Redis)."""
    ix = cs_index(cs_partition(owner))[0]
    members: list[bytes] = sync.zrangebylex(ix, b"[" + prefix, b"[" + prefix + b"\xff")
    return members


def owner_in_partition(partition: int, stem: str) -> str:
    """A customer id (or contact key) `stem-<n>` that falls into `partition`."""
    for n in range(100_000):
        candidate = f"{stem}-{n}"
        if cs_partition(candidate) == partition:
            return candidate
    raise AssertionError("no owner found")


def owner_not_in(partition: int, stem: str) -> str:
    """A customer id `stem-<n>` in another partition than `partition`."""
    for n in range(100):
        candidate = f"{stem}-{n}"
        if cs_partition(candidate) != partition:
            return candidate
    raise AssertionError("no owner found")
