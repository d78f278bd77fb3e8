"""Every Redis key pattern gmsd uses, in one place (see docs/keys.md for the table).

Keys that one Lua script touches together share a `{hash tag}` so that they live in one Redis
Cluster slot. Tags are built only from ids gmsd generated itself (checked by `is_service_id`),
never from raw user input, so a client cannot choose a slot.
"""

import re

# GMS service ids are UUIDs that gmsd generates; anything else cannot name a service.
_SERVICE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_service_id(text: str) -> bool:
    """True if `text` has the shape of a GMS service id gmsd could have issued."""
    return _SERVICE_ID.match(text) is not None


def gms_service(service_id: str) -> tuple[str, str, str]:
    """The keys of one GMS service: (strings + meta, file bytes, file types and names).

    - `gms:{id}:data`  hash: user string keys, plus `_name` (configured service) and `_exp`
      (expiry, ms since epoch). User keys never start with `_`, so they cannot collide.
    - `gms:{id}:bin`   hash: binary key -> exact bytes.
    - `gms:{id}:ftype` hash: binary key -> "<content type>\\n<file name>".
    All three carry the same PEXPIREAT.
    """
    tag = "gms:{" + service_id + "}:"
    return tag + "data", tag + "bin", tag + "ftype"


# Reserved fields of the data hash; user keys starting with "_" are never stored.
GMS_NAME_FIELD = "_name"
GMS_EXPIRY_FIELD = "_exp"
