"""Property tests (Hypothesis): the GMS JSON value conversion, and storage round trips through the app.

The conversion is checked against a model written from the contract (API.md, "JSON values"): any
JSON object, written with any spacing and escapes, gives each key's documented string form, and
a number keeps the exact text it was sent with. The round trips go through the ASGI app on
both stores: any Unicode key and value within the limits comes back as written, any bytes of a
file come back exactly, with their content type and file name.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from gmsd.gms.json_values import json_parameters

BASE = "/genesys/1/service"
KEY_BYTES = 4096  # the default limit

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text without lone surrogates (they cannot be UTF-8, so no client can send them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])
NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)


class Value:
    """A JSON value with the exact text it is sent as, and the string form GMS gives it."""

    def __init__(self, text: str, gms: str) -> None:
        self.text, self.gms = text, gms


@st.composite
def scalar(draw: st.DrawFn) -> Value:
    kind = draw(st.sampled_from(["string", "number", "true", "false", "null"]))
    if kind == "string":
        text = draw(TEXT)
        return Value(json.dumps(text, ensure_ascii=draw(st.booleans())), text)
    if kind == "number":
        number = draw(NUMBER)
        return Value(number, number)  # its JSON text, exactly as sent
    return Value(kind, kind)


def _object(members: list[tuple[str, Value]], space: str) -> Value:
    text = "{" + ",".join(f"{space}{json.dumps(k)}{space}:{space}{v.text}{space}" for k, v in members) + "}"
    return Value(text, "{" + ", ".join(f"{k}={v.gms}" for k, v in members) + "}")


def _array(items: list[Value], space: str) -> Value:
    return Value("[" + ",".join(f"{space}{v.text}{space}" for v in items) + "]",
                 "[" + ", ".join(v.gms for v in items) + "]")


def unique_members(values: st.SearchStrategy[Value]) -> st.SearchStrategy[list[tuple[str, Value]]]:
    return st.lists(st.tuples(TEXT, values), max_size=5, unique_by=lambda member: member[0])


VALUE = st.recursive(
    scalar(),
    lambda children: st.one_of(
        st.builds(_object, unique_members(children), SPACE),
        st.builds(_array, st.lists(children, max_size=5), SPACE),
    ),
    max_leaves=20,
)


@SETTINGS
@given(members=unique_members(VALUE), space=SPACE)
def test_any_json_object_becomes_the_documented_string_forms(members: list[tuple[str, Value]], space: str) -> None:
    body = _object(members, space).text.encode()
    assert json_parameters(body) == [(key, value.gms) for key, value in members]


@SETTINGS
@given(number=NUMBER)
def test_a_number_keeps_its_exact_json_text(number: str) -> None:
    assert json_parameters(f'{{"n": {number}}}'.encode()) == [("n", number)]
    assert json_parameters(f'{{"n": [{number}, {{"m": {number}}}]}}'.encode()) == [("n", f"[{number}, {{m={number}}}]")]


# --- round trips through the app --------------------------------------------------------------

def within_key_limit(key: str) -> bool:
    return len(key.encode()) <= KEY_BYTES


# A user key: not empty, not starting with `_` (never stored), at most 4,096 UTF-8 bytes; not
# `binary/…`, which `GET …/storage/binary/{key}` reads as the file `{key}`.
KEY = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=80).filter(
    lambda k: not k.startswith(("_", "binary/")) and within_key_limit(k))
VALUE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)


def path_of(key: str) -> str:
    """The key as one path segment: every byte but letters, digits, `-`, `_` and `~` escaped
    (`.` and `..` included, which a URL would otherwise resolve away)."""
    return quote(key, safe="").replace(".", "%2E")


def new_service(client: TestClient) -> str:
    response = client.post(f"{BASE}/storage")
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@SETTINGS
@given(data=st.dictionaries(KEY, VALUE_TEXT, min_size=1, max_size=8))
def test_any_unicode_keys_and_values_come_back_as_written(client: TestClient, data: dict[str, str]) -> None:
    sid = new_service(client)
    assert client.post(f"{BASE}/{sid}/storage", json=data).status_code == 200
    assert client.get(f"{BASE}/{sid}/storage").json() == data
    for key, value in data.items():
        one = client.get(f"{BASE}/{sid}/storage/{path_of(key)}")
        assert one.status_code == 200 and one.json() == {key: value}, (ascii(key), one.text)
        raw = client.get(f"{BASE}/{sid}/storage/binary/{path_of(key)}")
        assert raw.content == value.encode() and raw.headers["content-type"] == "text/plain; charset=utf-8"
    key = next(iter(data))
    assert client.delete(f"{BASE}/{sid}/storage/{path_of(key)}").status_code == 200
    assert key not in client.get(f"{BASE}/{sid}/storage").json()


@SETTINGS
@given(members=unique_members(VALUE).filter(lambda ms: all(k and not k.startswith("_") and within_key_limit(k)
                                                            for k, _ in ms)))
def test_json_bodies_are_stored_in_their_gms_string_forms(client: TestClient,
                                                          members: list[tuple[str, Value]]) -> None:
    sid = new_service(client)
    body = _object(members, " ").text.encode()
    response = client.post(f"{BASE}/{sid}/storage", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert client.get(f"{BASE}/{sid}/storage").json() == {key: value.gms for key, value in members}


# Multipart cannot carry `"`, CR or LF in a part name or file name as is (clients escape them in
# ways servers do not undo): names from the rest of Unicode.
NAME = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='"\\'), min_size=1,
               max_size=40).filter(lambda k: not k.startswith(("_", "binary/")) and within_key_limit(k))
MEDIA_TYPE = st.sampled_from(["application/octet-stream", "image/png", "text/plain", "application/pdf",
                              "text/csv; charset=latin-1", "application/x-custom+json"])


@SETTINGS
@given(data=st.binary(max_size=20_000), key=NAME, filename=NAME, media_type=MEDIA_TYPE)
def test_any_bytes_of_a_file_come_back_exactly(client: TestClient, data: bytes, key: str, filename: str,
                                               media_type: str) -> None:
    sid = new_service(client)
    response = client.post(f"{BASE}/{sid}/storage", files={key: (filename, data, media_type)})
    assert response.status_code == 200, response.text
    served = client.get(f"{BASE}/{sid}/storage/binary/{path_of(key)}")
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == media_type
    assert int(served.headers["content-length"]) == len(data)
    disposition = served.headers["content-disposition"]
    assert disposition in (f'attachment; filename="{filename}"',
                           f"attachment; filename*=UTF-8''{quote(filename, safe='')}")
    assert client.get(f"{BASE}/{sid}/storage").json() == {}  # files are not listed with the strings

