"""`[profiles]` in the configuration file: a bad core attribute stops the start with a message."""

from __future__ import annotations

import pytest

from gmsd.config import parse_config
from gmsd.errors import ConfigError
from gmsd.main import create_app
from gmsd.settings import Settings
from tests.conftest import AppFactory
from tests.support.ucs_support import CS, assert_error, create, identify, ids, key


@pytest.mark.parametrize("table", [
    '[[profiles.attributes]]\nname = "1st"\ntype = "string"\n',
    '[[profiles.attributes]]\nname = "a"\ntype = "blob"\n',
    '[[profiles.attributes]]\nname = "customer_id"\ntype = "string"\n',
    '[[profiles.attributes]]\nname = "a"\ntype = "string"\n[[profiles.attributes]]\nname = "A"\ntype = "string"\n',
    '[profiles]\ncolour = 1\n',
])
def test_bad_profile_attributes_are_configuration_errors(table: str) -> None:
    with pytest.raises(ConfigError, match="profiles"):
        parse_config(table, "<test>")


def test_a_default_of_the_wrong_type_stops_the_start() -> None:
    config = parse_config('[[profiles.attributes]]\nname = "Age"\ntype = "integer"\ndefault = "old"\n', "<test>")
    with pytest.raises(ConfigError, match="default"):
        create_app(Settings(redis_url=None, config=config))


def test_a_key_on_an_attribute_the_configuration_dropped_is_ignored(make_client: AppFactory) -> None:
    before = make_client('[[profiles.attributes]]\nname = "Loyalty"\ntype = "string"\n'
                         '[[profiles.attributes]]\nname = "Name"\ntype = "string"\n')
    key(before, name="idLoyalty", attributes=["Loyalty"])
    cid = create(before, {"Loyalty": "gold", "Name": "A"})
    assert ids(identify(before, Loyalty="gold")) == [cid]
    after = make_client('[[profiles.attributes]]\nname = "Name"\ntype = "string"\n')
    assert after.get(f"{CS}/metadata/identification-keys").json() == []
    assert_error(after.get(f"{CS}/profiles", params={"Loyalty": "gold", "id_key": "idLoyalty"}), 400,
                 "BadRequestException")
    other = create(after, {"Name": "B"})
    assert after.put(f"{CS}/profiles/{cid}", json={"Name": "C"}).status_code == 200
    assert other
