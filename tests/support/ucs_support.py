"""Helpers of the customer profile tests: the documented Phone extension, keys, profiles."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

CS = "/genesys/1/cs"
EXCEPTIONS = "com.genesyslab.gsg.services.contextservices.exceptions."

# The extension schema of PROFILES.md §3.7 (doc example E12).
PHONE = {"name": "Phone", "type": "multi-valued", "unique": ["PhoneNumber"],
         "attributes": [{"name": "PhoneType", "type": "integer", "default": 0, "mandatory": "true"},
                        {"name": "prefix", "type": "string", "length": 3, "default": "555"},
                        {"name": "PhoneNumber", "type": "integer", "length": 15, "mandatory": "true"},
                        {"name": "description", "type": "string", "length": 32},
                        {"name": "start_availabilty", "type": "datetime"},
                        {"name": "end_availabilty", "type": "datetime", "mandatory": "false"}]}
ADDRESS = {"name": "Address", "type": "single-valued",
           "attributes": [{"name": "city", "type": "string"}, {"name": "zip", "type": "string", "length": 10}]}
BRUCE = {"FirstName": "Bruce", "LastName": "Banner",
         "EmailAddress": ["bruce.banner@marvelous.com", "b.banner@hulk.dom"],
         "Phone": [{"PhoneType": 0, "prefix": "+33", "PhoneNumber": "3145926535", "description": "family phone"}]}


def assert_error(response: Any, status: int, exception: str) -> dict[str, Any]:
    """A UCS error: the status, a JSON body with a message and the exception class."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["exception"] == EXCEPTIONS + exception
    assert isinstance(body["message"], str) and body["message"]
    return body


def extension(client: TestClient, schema: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Create an extension schema (201)."""
    response = client.post(f"{CS}/metadata/profiles/extensions", json=schema, headers=headers)
    assert response.status_code == 201, response.text


def key(client: TestClient, headers: dict[str, str] | None = None, **body: Any) -> None:
    """Create an identification key (201)."""
    response = client.post(f"{CS}/metadata/identification-keys", json=body, headers=headers)
    assert response.status_code == 201, response.text


def create(client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    """Create a profile; its customer id."""
    response = client.post(f"{CS}/profiles", json=body, headers=headers)
    assert response.status_code == 201, response.text
    customer_id = str(response.json()["customer_id"])
    assert response.headers["location"] == f"{CS}/profiles/{customer_id}"
    return customer_id


def profile(client: TestClient, customer_id: str, extensions: str = "",
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    """GET a profile (200)."""
    params = {"extensions": extensions} if extensions else {}
    response = client.get(f"{CS}/profiles/{customer_id}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def identify(client: TestClient, headers: dict[str, str] | None = None, **params: str) -> list[dict[str, Any]]:
    """GET /profiles?… (200); the answer."""
    response = client.get(f"{CS}/profiles", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def ids(found: list[dict[str, Any]]) -> list[str]:
    """The customer ids of an identify answer."""
    return [item["customer_id"] for item in found]
