"""The customer profile keys: one cluster slot per tenant, never chosen by a client's text."""

from __future__ import annotations

from redis.crc import key_slot

from gmsd.keys import cs_space, is_customer_id, ucs_interaction_index, ucs_profile, ucs_tenant
from gmsd.ucs.profiles import new_customer_id
from gmsd.ucs.schema import member_text


def test_every_key_of_a_tenant_is_in_one_slot() -> None:
    for space in ("", cs_space("tenant-A"), cs_space("b")):
        keys = [*ucs_tenant(space), ucs_interaction_index(space), ucs_profile(new_customer_id(), space)]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
    assert ucs_tenant()[0] == "ucs:{ucs}:schema"
    assert ucs_profile("0004Va58A92T0017", cs_space("acme")) == "ucs:{ucs:t:acme:}:p:0004Va58A92T0017"
    # Tenants are apart: no tenant's keys are another's.
    assert ucs_tenant(cs_space("a"))[0] == "ucs:{ucs:t:a:}:schema"
    assert not ucs_tenant(cs_space("a.b"))[0].startswith("ucs:{ucs:t:a:}")


def test_customer_ids_are_the_only_user_visible_text_in_key_names() -> None:
    assert all(is_customer_id(new_customer_id()) for _ in range(100))
    for bad in ("0004Va58A92T001", "0004Va58A92T0017x", "{slot}0004Va58A9", "0004Va58A92T001\n", ""):
        assert not is_customer_id(bad)
    assert member_text("a%b\0c\1d") == b"a%25b%00c%01d"
