"""Multipart bodies: each part's Content-Disposition is parsed once per distinct value and kept
in a bounded table (gmsd.web.body): answers stay each request's own, and the table stays small
whatever names clients send."""

from __future__ import annotations

from starlette.testclient import TestClient

from gmsd.web import body
from tests.conftest import AppFactory

CONFIG = "[services.s]\n_ttl = 600\n"


def _create(client: TestClient, fields: dict[str, str]) -> dict[str, str]:
    files = {name: (None, value) for name, value in fields.items()}  # text parts, multipart/form-data
    created = client.post("/genesys/1/service/s", files=files)
    assert created.status_code == 200, created.text
    stored = client.get(f"/genesys/1/service/{created.json()['id']}/storage")
    assert stored.status_code == 200
    answer: dict[str, str] = stored.json()
    return answer


def test_repeated_part_names_keep_each_requests_values(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    assert _create(client, {"firstname": "Ann", "city": "Oslo"}) == {"firstname": "Ann", "city": "Oslo"}
    assert _create(client, {"firstname": "Bo", "city": "Rome"}) == {"firstname": "Bo", "city": "Rome"}


def test_the_table_of_dispositions_stays_bounded(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    for batch in range(12):  # 1,200 distinct names: past the table's bound
        fields = {f"name-{batch}-{i}": str(i) for i in range(100)}
        assert _create(client, fields) == fields
        assert len(body._DISPOSITIONS) <= body._DISPOSITIONS_KEPT
    long_name = "n" * (body._DISPOSITION_BYTES + 1)
    assert _create(client, {long_name: "v"}) == {long_name: "v"}
    assert not any(long_name.encode() in header for header in body._DISPOSITIONS)  # long values not kept
