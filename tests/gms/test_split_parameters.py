"""How a write's parameters split into orchestration ones and user data
(`gmsd.gms.service_api.split_parameters`): a key sent twice keeps its last value, in the place of
its last occurrence, whether it was a string or a file before; key and file limits hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmsd.config import Limits
from gmsd.errors import BadRequest, PayloadTooLarge
from gmsd.gms.service_api import split_parameters
from gmsd.types import StoredFile

LIMITS = Limits(key_bytes=8, file_bytes=4)
_values = st.one_of(st.text(max_size=3), st.builds(StoredFile, st.binary(max_size=4)))


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "é", "_x", "_y"]), _values), max_size=12))
def test_the_last_occurrence_of_a_key_wins_in_its_place(params: list[tuple[str, str | StoredFile]]) -> None:
    control, area = split_parameters(params, LIMITS)
    last: dict[str, str | StoredFile] = {}
    for key, value in params:
        if not key.startswith("_"):
            last.pop(key, None)
            last[key] = value
    assert list(area.strings.items()) == [(k, v) for k, v in last.items() if isinstance(v, str)]
    assert list(area.files.items()) == [(k, v) for k, v in last.items() if isinstance(v, StoredFile)]
    assert control == {k: v for k, v in params if k.startswith("_") and isinstance(v, str)}


@pytest.mark.parametrize("key", ["", "k" * 9, "é" * 5])
def test_keys_out_of_bounds_are_refused(key: str) -> None:
    with pytest.raises(BadRequest):
        split_parameters([(key, "v")], LIMITS)


def test_keys_at_the_bound_are_taken() -> None:
    assert split_parameters([("k" * 8, "v"), ("é" * 4, "w")], LIMITS)[1].strings == {"k" * 8: "v", "é" * 4: "w"}


def test_a_file_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        split_parameters([("f", StoredFile(b"12345"))], LIMITS)
