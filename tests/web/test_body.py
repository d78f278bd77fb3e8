"""Request bodies (gmsd.web.body): urlencoded bodies are split without `parse_qsl` (only what
has a `%` or a `+` is unquoted) and must come out exactly as it would split them; each multipart part's
Content-Disposition is parsed once per distinct value and kept in a bounded table: answers stay
each request's own, and the table stays small whatever names clients send."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header
from starlette.testclient import TestClient

from gmsd.config import Limits
from gmsd.errors import BadRequest, PayloadTooLarge
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


@given(st.text(alphabet="ab=&;é \t%+2FC3A9", max_size=60), st.integers(min_value=1, max_value=8))
def test_urlencoded_bodies_split_as_parse_qsl_splits_them(text: str, fields: int) -> None:
    limits = Limits(fields=fields)
    try:
        expected = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=fields)
    except ValueError:  # over the field limit (or an escape that is not UTF-8): never split
        with pytest.raises((PayloadTooLarge, BadRequest)):
            body._urlencoded(text.encode(), limits)
        return
    assert body._urlencoded(text.encode(), limits) == expected


@given(st.binary(max_size=40) | st.text(alphabet="aAjJ/;= \t\n\r\x0b\x0c\"x-+.\x85\xa0é", max_size=40).map(str.encode))
def test_a_media_type_is_the_one_parse_options_header_finds(header: bytes) -> None:
    assert body.media_type_of(header) == parse_options_header(header)[0]
