"""Every Redis key pattern gmsd uses, in one place (see docs/keys.md for the table).

Keys that one Lua script touches together share a `{hash tag}` so that they live in one Redis
Cluster slot. Tags are built only from ids gmsd generated itself (checked by `is_service_id`),
never from raw user input, so a client cannot choose a slot.
"""

import os
import re
import uuid
import zlib

# GMS service ids are UUIDs that gmsd generates; anything else cannot name a service.
_SERVICE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def random_uuid() -> str:
    """A fresh random (version 4) UUID as text: what `str(uuid.uuid4())` gives, for half the CPU
    (16 bytes of os.urandom formatted directly, no UUID object)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# The RFC 4122 variant in the 17th hex digit: its top two bits are 10 (8, 9, a or b).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


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


# What SCAN matches to find every GMS service (its `data` key), and the service a match names.
GMS_DATA_MATCH = "gms:{*}:data"


def gms_data_service(data_key: str) -> str:
    """The service id in the name of a `gms:{id}:data` key."""
    return data_key[len("gms:{"):-len("}:data")]


# Reserved fields of the data hash; user keys starting with "_" are never stored.
GMS_NAME_FIELD = "_name"
GMS_EXPIRY_FIELD = "_exp"
# A Storage API area (`POST /genesys/1/storage/{ttl}`) has the layout of a service whose `_name`
# is empty (a configured service name never is): `/genesys/1/storage/{id}` then addresses either.
STORAGE_AREA_NAME = ""

# Custom storage ids (`/genesys/1/storage/custom/{customId}`) are scoped by the `gms_user` header.
# Their area id is a UUID derived from both, prefixed `c-` so that it never has the shape of an
# id `/genesys/1/storage/{id}` accepts: one user's area is reachable only with its `gms_user`.
# The client's text is hashed, so it cannot choose a slot.
_CUSTOM_NAMESPACE = uuid.UUID("5d1b7c1e-3f0a-4b8e-9a61-2f4c0b7d9e13")


def storage_custom_area(gms_user: str, custom_id: str) -> str:
    """The area id of custom id `custom_id` of user `gms_user` (length-prefixed: unambiguous)."""
    return "c-" + str(uuid.uuid5(_CUSTOM_NAMESPACE, f"{len(gms_user)}:{gms_user}{custom_id}"))


# --- Access-number pools (resource groups) ----------------------------------------------------
# Every key of one resource group carries the tag `{pool:<group>}`: a reservation is made and
# released by one script on one slot. Group names come from the configuration only (letters,
# digits, `.`, `_`, `-`), never from a request.


def access_pool(group: str) -> tuple[str, str, str, str, str]:
    """The keys of resource group `group`: (reservations, expiries, busy counts, by number, next).

    - `gms:{pool:G}:resv` hash: service id -> "<number>\t<code>\t<created ms>\t<expires ms>\t<phone>"
    - `gms:{pool:G}:exp`  sorted set: service id by reservation expiry (ms)
    - `gms:{pool:G}:busy` hash: number -> count of its live reservations
    - `gms:{pool:G}:num`  sorted set (score 0, by member): "<number>\0<service id>"
    - `gms:{pool:G}:next` string: the round-robin position
    All five expire with the group's last reservation.
    """
    tag = "gms:{pool:" + group + "}:"
    return tag + "resv", tag + "exp", tag + "busy", tag + "num", tag + "next"


# --- Context Services ------------------------------------------------------------------------
# A conversation (a CS service with its states and tasks) and the index entries that composite
# start must read and write live in one partition p (0..1023), every key tagged `{cs:<p>}`.
# p is crc32 of the owner (customer_id, else contact_key); the service id `<p>-<uuid>` carries
# it, so any later call finds the slot from the id alone. User text never appears in a key name:
# it appears only inside index *members* (escaped), so it cannot choose a slot.

CS_PARTITIONS = 1024
_CS_SERVICE_ID = re.compile(
    r"^(0|[1-9][0-9]{0,3})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


def cs_partition(owner: str) -> int:
    """The partition of a customer id or contact key: stable across processes and versions."""
    return zlib.crc32(owner.encode("utf-8")) % CS_PARTITIONS


def cs_new_service_id(partition: int) -> str:
    """A fresh CS service id in `partition` (the shape of real GMS ids: `115-cc038ec2-…`)."""
    return f"{partition}-{random_uuid()}"


def cs_service_partition(service_id: str) -> int | None:
    """The partition a CS service id names, or None if gmsd cannot have issued it."""
    match = _CS_SERVICE_ID.match(service_id)
    if match is None:
        return None
    partition = int(match.group(1))
    return partition if partition < CS_PARTITIONS else None


def is_cs_service_id(text: str) -> bool:
    """True if `text` has the shape of a CS service id gmsd could have issued (a partition, a UUID)."""
    return cs_service_partition(text) is not None


# Tenants (the `ContactCenterId` header): each has a keyspace of its own, `cs:t:<tenant>:{cs:<p>}:…`;
# the default tenant (no header) keeps `cs:{cs:<p>}:…`. A tenant id is letters, digits, `.`, `_`
# and `-` only, so it holds no `{` (the first `{…}` of a key is its hash tag: the slot stays that of
# the partition, never the client's choice) and no `:` (one tenant's prefix is never another's).
_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def cs_space(tenant: str | None) -> str:
    """The key prefix of a tenant's Context Services keyspace (`""` for the default tenant).

    Raises ValueError for a tenant id that is not 1 to 64 letters, digits, `.`, `_` or `-`.
    """
    if tenant is None:
        return ""
    if _TENANT.fullmatch(tenant) is None:
        raise ValueError("a ContactCenterId is 1 to 64 letters, digits, `.`, `_` or `-`")
    return "t:" + tenant + ":"


def _cs_tag(partition: int, space: str = "") -> str:
    return "cs:" + space + "{cs:" + str(partition) + "}:"


def cs_conversation(service_id: str, partition: int, space: str = "") -> tuple[str, str, str]:
    """The keys of one conversation: (service hash, states hash, tasks hash); one PEXPIREAT.

    - `cs:{cs:p}:svc:<id>`    fields of the service (see docs/keys.md)
    - `cs:{cs:p}:states:<id>` `<state id>:<field>` for every state, plus `active`
    - `cs:{cs:p}:tasks:<id>`  `<task id>:<field>` for every task, plus `active`
    A tenant's keys carry its `space` (`cs_space`) before the tag.
    """
    tag = _cs_tag(partition, space)
    return tag + "svc:" + service_id, tag + "states:" + service_id, tag + "tasks:" + service_id


def cs_index(partition: int, space: str = "") -> tuple[str, str]:
    """The index of one partition: (members ordered by name, score 0; same members by expiry ms)."""
    tag = _cs_tag(partition, space)
    return tag + "ix", tag + "ixexp"


# The tenants that started services (their `cs_space` prefixes): what the auto-complete sweeper
# walks besides the default tenant. A key of its own slot; it expires 30 days after its last addition.
CS_TENANTS = "cs-tenants"  # outside `cs:*`: every key there carries a partition tag


def cs_time_index(partition: int, space: str = "") -> tuple[str, str, str]:
    """The time index of one partition: service ids by start ms, by end ms, and the active ones by
    auto-complete deadline ms (`ts`, `te`, `tu`). Their entries are trimmed with the conversation
    they point to (member `t\\0<service id>` of `ixexp`, scored by its expiry)."""
    tag = _cs_tag(partition, space)
    return tag + "ts", tag + "te", tag + "tu"


# Index members: `<kind>\0<escaped owner text>\0…\0<service id>#<association generation>`.
# Kinds: `c` services of a customer, `a` anonymous services of a contact key, `m` the active
# services that composite start matches on (customer, contact key, service type).
# Only `gmsd.cs.store` uses the builders of partitions, keys and members (tests/project/test_layers.py);
# the rest of `gmsd.cs` may use CS_PARTITIONS, cs_space and is_cs_service_id.


def cs_text(text: str) -> bytes:
    """User text made safe for an index member: `%` and NUL percent-escaped (NUL separates parts)."""
    return text.encode("utf-8").replace(b"%", b"%25").replace(b"\0", b"%00")


def cs_customer_prefix(customer_id: str) -> bytes:
    """Members of the services of a customer start with this."""
    return b"c\0" + cs_text(customer_id) + b"\0"


def cs_anonymous_prefix(contact_key: str) -> bytes:
    """Members of the anonymous services of a contact key start with this."""
    return b"a\0" + cs_text(contact_key) + b"\0"


def cs_owner_part(customer_id: str | None) -> bytes:
    """The customer part of a match member (`-`: anonymous)."""
    return b"-" if customer_id is None else b"c" + cs_text(customer_id)


def cs_type_part(type_text: str | None) -> bytes:
    """A service, state or task type as matched (`-`: no type)."""
    return b"-" if type_text is None else b"t" + cs_text(type_text)


def cs_match_suffix(contact_key: str | None, type_text: str | None) -> bytes:
    """The part of a match member after the customer part (kept in the service to re-associate)."""
    contact = b"-" if contact_key is None else b"k" + cs_text(contact_key)
    return b"\0" + contact + b"\0" + cs_type_part(type_text) + b"\0"


def cs_match_prefix(customer_id: str | None, contact_key: str | None, type_text: str | None) -> bytes:
    """Members of the active services composite start would match start with this."""
    return b"m\0" + cs_owner_part(customer_id) + cs_match_suffix(contact_key, type_text)


def cs_match_owner_prefix(customer_id: str | None, contact_key: str | None = None) -> bytes:
    """Members of the match entries of a customer (any contact key and type), or of the anonymous
    services of a contact key (any type), start with this."""
    if customer_id is not None:
        return b"m\0" + cs_owner_part(customer_id) + b"\0"
    return b"m\0-\0k" + cs_text(contact_key or "") + b"\0"


def cs_member(prefix: bytes, service_id: str, generation: int = 0) -> bytes:
    """The index member of a service under `prefix`."""
    return prefix + service_id.encode() + b"#" + str(generation).encode()


def cs_member_service(member: bytes) -> str:
    """The service id an index member points to."""
    return member.rpartition(b"\0")[2].partition(b"#")[0].decode()


# --- Customer profiles (UCS) and interactions ------------------------------------------------
# Every key of one tenant's profiles, schema, identification index and interactions carries the
# tag `{ucs}` (default tenant) or `{ucs:t:<tenant>:}`: one Redis Cluster slot per tenant, so every
# write (a unique key's check, a merge, an index back-fill batch) is one Lua script on one slot
# (docs/keys.md "Customer profiles" gives the reasons). Customer ids are generated by gmsd
# (`is_customer_id`): user text never appears in a key name, only in hash fields and members.

_CUSTOMER_ID = re.compile(r"^[0-9A-Za-z]{16}$")


def is_customer_id(text: str) -> bool:
    """True if `text` has the shape of a customer id gmsd could have issued (16 letters/digits)."""
    return _CUSTOMER_ID.match(text) is not None


def _ucs_tag(space: str) -> str:
    return "ucs:{ucs" + (":" + space if space else "") + "}:"


def ucs_tenant(space: str = "") -> tuple[str, str, str, str]:
    """The shared keys of a tenant's profiles: (schema hash, identification index, ids, interactions).

    - `ucs:{ucs}:schema` hash: `x:<name>` extension schemas, `k:<name>` identification keys (JSON,
      names lower-cased), `gen` the schema generation, `kseq` the last key number
    - `ucs:{ucs}:ix`  sorted set, score 0: `<key number>.<n>\\0<v1>\\0…\\0<vn>\\0<customer id>`
    - `ucs:{ucs}:ids` sorted set, score 0: every customer id (back-fills walk it)
    - `ucs:{ucs}:int` hash: `<interaction id>\\0<part>` (`m` metadata JSON, `c` customer id, `x` its
      list members, `pt`, `st`, `stt`, `bc`, `bct` contents and their types)
    """
    tag = _ucs_tag(space)
    return tag + "schema", tag + "ix", tag + "ids", tag + "int"


def ucs_interaction_index(space: str = "") -> str:
    """Sorted set, score 0: `c\\0<customer>\\0<inverted ms>\\0<id>` and `s\\0<service>\\0…` members."""
    return _ucs_tag(space) + "ii"


def ucs_profile(customer_id: str, space: str = "") -> str:
    """The hash of one profile: `v` version, `c` core attributes (JSON object as sent), `x:<ext>`
    each extension's value (JSON), `ix` its index members (each ended by `\\1`)."""
    return _ucs_tag(space) + "p:" + customer_id
