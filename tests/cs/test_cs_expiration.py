"""Sliding expiration (MAINTENANCE.md §5.5): a conversation lives for the configured period from its
last start or update; an explicit `ttl`/`expiration_time` overrides that until another explicit one;
index entries never outlive what they point to."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from gmsd.config import parse_config
from gmsd.errors import ConfigError
from gmsd.keys import cs_customer_prefix, cs_index, cs_partition, cs_service_partition, cs_time_index
from tests.conftest import AppFactory, Backend
from tests.support.cs_support import CS, get, ids, index_members, owner_not_in, post_ok, start_service, start_state

PERIOD = 2  # seconds
CONFIG = f"""
[context_services]
default_ttl = "{PERIOD}s"

[context_services.expiration_by_service_type]
"long" = "1h"
"""


def alive(client: TestClient, sid: str) -> bool:
    return client.get(f"{CS}/services/{sid}").status_code == 200


def test_a_conversation_touched_every_second_outlives_the_period(make_client: AppFactory,
                                                                 backend: Backend) -> None:
    client = make_client(CONFIG)
    touched = start_service(client, customer_id="C-touched")
    alone = start_service(client, customer_id="C-alone")
    far = start_service(client, contact_key="ck-slide")  # its customer's entries in another partition
    customer = owner_not_in(cs_service_partition(far) or 0, "C-far-slide")
    post_ok(client, f"/customers/{customer}/services/{far}", None, 200)
    writes = [
        lambda: start_state(client, touched, state_type="s"),
        lambda: client.put(f"{CS}/services/{touched}/extensions/x", json=1),
        lambda: client.put(f"{CS}/services/{far}/extensions/x", json=1),
        lambda: start_state(client, far, state_type="s"),
    ]
    deadline = time.monotonic() + 2 * PERIOD + 0.5
    n = 0
    while time.monotonic() < deadline:
        writes[n % 2]()
        writes[2 + n % 2]()
        n += 1
        time.sleep(0.5)
    assert alive(client, touched) and alive(client, far)
    assert not alive(client, alone)
    assert ids(get(client, f"/customers/{customer}/services")) == [far]  # its remote entries were raised
    # nothing of the one left alone remains in the index once its partition is read
    assert get(client, "/customers/C-alone/services") == []
    assert index_members(backend.sync, "C-alone", cs_customer_prefix("C-alone")) == []
    partition = cs_partition("C-alone")
    ts, te, _ = cs_time_index(partition)
    gone = alone.encode()
    assert backend.sync.zscore(ts, gone) is None and backend.sync.zscore(te, gone) is None
    assert backend.sync.zscore(cs_index(partition)[1], b"t\0" + gone) is None
    # and left alone in turn, the touched ones go too
    time.sleep(PERIOD + 0.2)
    assert not alive(client, touched) and not alive(client, far)


def test_an_explicit_expiry_overrides_the_period_until_another_one(make_client: AppFactory) -> None:
    client = make_client(CONFIG)
    pinned = start_service(client, customer_id="C-pinned", ttl=1)
    longer = start_service(client, customer_id="C-pinned-long")
    assert client.put(f"{CS}/services/{longer}", json={"ttl": "1h"}).status_code == 200
    typed = start_service(client, customer_id="C-typed", service_type="long")
    time.sleep(0.5)
    start_state(client, pinned, state_type="s")  # an update does not slide an explicit expiry
    time.sleep(0.7)
    assert not alive(client, pinned)
    time.sleep(PERIOD)
    assert alive(client, longer)  # PUT's explicit hour, not the 2 s period
    start_state(client, longer, state_type="s")
    assert alive(client, typed)  # its service type's period: an hour


@pytest.mark.parametrize(("text", "key"), [
    ('[context_services]\ndefault_ttl = "3600"\n', "default_ttl"),
    ('[context_services]\ndefault_ttl = "2 w"\n', "default_ttl"),
    ('[context_services.expiration_by_service_type]\n"sales" = "7x"\n', "expiration_by_service_type.sales"),
])
def test_a_period_not_in_gms_units_stops_the_start(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        parse_config(text, "<test>")


def test_a_time_index_key_made_by_a_write_that_moves_no_expiry_still_expires(make_client: AppFactory,
                                                                             backend: Backend) -> None:
    """Ending a service whose expiry is pinned moves no expiry, but may create its partition's
    `te`: that key gets the index keys' expiry too (no partition key is kept forever)."""
    client = make_client(CONFIG)
    customer = "C-pinned-end"
    sid = start_service(client, customer_id=customer, ttl=3600)
    _, te, _ = cs_time_index(cs_partition(customer))
    assert backend.sync.exists(te) == 0  # the first end in this partition makes it
    post_ok(client, f"/services/{sid}/end", {})
    assert backend.sync.zscore(te, sid.encode()) is not None
    assert 3_590_000 < backend.sync.pttl(te) <= 3_600_000
