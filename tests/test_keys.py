"""`gmsd.keys` beyond the Context Services keys (tests/cs/test_cs_keys.py): fresh ids."""

from __future__ import annotations

import uuid

from gmsd.keys import cs_new_service_id, cs_service_partition, is_service_id, random_uuid


def test_random_uuids_are_version_4_uuids_as_uuid4_writes_them() -> None:
    drawn = [random_uuid() for _ in range(4000)]
    assert len(set(drawn)) == len(drawn)
    for text in drawn:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, dashed: the shape str(uuid.uuid4()) has
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert is_service_id(text)
    # every hex digit shows up in every random position (none is stuck): 4000 draws leave no gap
    for position in (0, 9, 15, 17, 35):
        assert {text[position] for text in drawn} == set("0123456789abcdef"), position
    assert {text[19] for text in drawn} == set("89ab")


def test_cs_service_ids_carry_their_partition_and_a_fresh_uuid() -> None:
    first, second = cs_new_service_id(7), cs_new_service_id(7)
    assert first != second
    assert cs_service_partition(first) == 7 and uuid.UUID(first[2:]).version == 4
