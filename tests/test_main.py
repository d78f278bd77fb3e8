"""The composition root (`gmsd.main`): what its start-up does to the process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.conftest import AppFactory


@pytest.fixture
def gc_settings() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_start_up_freezes_what_it_made_and_collects_young_objects_less_often(
        gc_settings: None, make_client: AppFactory) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    client = make_client()
    assert gc.get_threshold() == (10_000, 10, 10)
    assert gc.get_freeze_count() > 0
    assert client.get("/healthz").status_code == 200
