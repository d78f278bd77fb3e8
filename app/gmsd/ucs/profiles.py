"""Customer profiles (PROFILES.md §3): create, read, replace, delete, extension records, merge,
identify, and the schema objects (extension schemas, identification keys).

Every write reads the schema and the profiles it changes, computes their new state and index
members (`gmsd.ucs.schema`), and hands it to the store as one atomic step that is refused if the
schema or a profile changed in between; then it is computed again (optimistic concurrency). A
unique key's check is made inside that step, so concurrent writes cannot both win.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec
from msgspec import Raw

from gmsd.config import ProfilesOptions
from gmsd.errors import ConfigError
from gmsd.keys import is_customer_id
from gmsd.ucs.errors import ProfileConflict, ProfileNotFound, ProfileRefused, ProfilesForbidden
from gmsd.ucs.models import (
    DROPPING,
    READY,
    AttributeSchema,
    ExtensionSchema,
    IdentificationKey,
    MergeOptions,
    StoredExtension,
    StoredKey,
)
from gmsd.ucs.plans import IndexFill, ProfileWrite, WriteOutcome
from gmsd.ucs.schema import (
    IDENTIFY_LIMIT,
    MAX_EXTENSIONS,
    MAX_KEYS,
    ProfileData,
    Record,
    Schema,
    check_name,
    choose_key,
    complete_core,
    index_entries,
    key_answer,
    key_entries,
    key_prefix,
    merged_core,
    merged_records,
    new_name_is_free,
    parse_attribute,
    parse_extension,
    parse_key,
    parse_records,
    records_value,
    schema_from_hash,
    search_prefix,
    split_body,
    stored_records,
    unique_values,
    upsert_records,
)

_encode = msgspec.json.encode
_decode = msgspec.json.decode
RETRIES = 20  # optimistic rounds before a write gives up (409: retry later)
BATCH = 200  # profiles per step of a back-fill or an extension purge
_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
CONTROL_PARAMETERS = frozenset({"id_key", "include_profile", "extensions", "include_extensions"})


def new_customer_id() -> str:
    """A fresh customer id: 16 letters and digits, the shape of UCS ids (`0004Va58A92T0017`)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


class ProfileStorage(Protocol):
    """What the profile domain needs from Redis (`gmsd.ucs.store.UcsStore`)."""

    async def read_schema(self) -> dict[bytes, bytes]: ...
    async def write_schema(self, generation: str, changes: Sequence[tuple[str, bytes]],
                           fresh: Sequence[str]) -> WriteOutcome: ...
    async def read_profile(self, customer_id: str) -> dict[bytes, bytes]: ...
    async def read_profiles(self, customer_ids: Sequence[str]) -> list[dict[bytes, bytes]]: ...
    async def write_profiles(self, generation: str, writes: Sequence[ProfileWrite],
                             move_interactions: tuple[str, str] | None = None) -> WriteOutcome: ...
    async def fill_index(self, generation: str, fills: Sequence[IndexFill]) -> WriteOutcome: ...
    async def index_range(self, prefix: bytes, limit: int) -> list[bytes]: ...
    async def index_drop(self, prefix: bytes, batch: int) -> int: ...
    async def customer_ids(self, after: str, count: int) -> list[str]: ...
    async def drop_field(self, customer_ids: Sequence[str], name: str) -> None: ...
    def in_space(self, space: str) -> ProfileStorage: ...


def core_schema(options: ProfilesOptions) -> tuple[AttributeSchema, ...]:
    """The configured core attributes as Attribute Schemas (a bad `default` stops the start)."""
    out = []
    for i, attribute in enumerate(options.schema):
        raw: dict[str, Any] = {"name": attribute.name, "type": attribute.type, "mandatory": attribute.mandatory}
        if attribute.length is not None:
            raw["length"] = attribute.length
        if attribute.default is not None:
            raw["default"] = attribute.default
        try:
            out.append(parse_attribute(raw, f"profiles.attributes[{i}]"))
        except ProfileRefused as exc:
            raise ConfigError(exc.message) from None
    return tuple(out)


def _profile(fields: Mapping[bytes, bytes]) -> ProfileData:
    extensions = {name[2:].decode(): Raw(value) for name, value in fields.items() if name.startswith(b"x:")}
    return ProfileData(_decode(fields.get(b"c", b"{}"), type=dict[str, Raw]), extensions)


def _fields(profile: ProfileData, extensions: Sequence[str] | None = None) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """The hash fields to set for a profile (core, and these extensions: all when None), and to delete."""
    names = list(profile.extensions) if extensions is None else extensions
    set_fields = {"c": _encode(profile.core)}
    deleted: list[str] = []
    for name in names:
        value = profile.extensions.get(name)
        if value is None:
            deleted.append("x:" + name)
        else:
            set_fields["x:" + name] = bytes(value)
    return set_fields, tuple(deleted)


class CustomerProfiles:
    """The profile operations of one tenant."""

    def __init__(self, store: ProfileStorage, options: ProfilesOptions) -> None:
        self.store = store
        self.options = options
        self.core = core_schema(options)

    def in_space(self, space: str) -> CustomerProfiles:
        """These operations on another tenant's keyspace."""
        other = CustomerProfiles.__new__(CustomerProfiles)
        other.store, other.options, other.core = self.store.in_space(space), self.options, self.core
        return other

    def require_enabled(self) -> None:
        """403 when `[profiles] enabled = false`."""
        if not self.options.enabled:
            raise ProfilesForbidden("customer profiles are not enabled")

    async def schema(self) -> Schema:
        """The tenant's schema as it is now."""
        return schema_from_hash(self.core, await self.store.read_schema())

    async def _read(self, customer_id: str) -> tuple[bytes, ProfileData]:
        if not is_customer_id(customer_id):
            raise ProfileNotFound(f"no customer {customer_id[:40]!r}")
        fields = await self.store.read_profile(customer_id)
        if not fields:
            raise ProfileNotFound(f"no customer {customer_id!r}")
        return fields[b"v"], _profile(fields)

    def _refusal(self, schema: Schema, outcome: WriteOutcome) -> Exception:
        if outcome.status == "nf":
            return ProfileNotFound(f"no customer {outcome.detail.decode()!r}")
        if outcome.status == "taken":
            number = int(outcome.detail.split(b".", 1)[0])
            names = [k.name for k in schema.keys.values() if k.number == number]
            name = names[0] if names else str(number)
            return ProfileConflict(f"unique identification key {name!r}: another customer has these values")
        return ProfileConflict("the profile kept changing while being written; retry")

    async def _write(self, schema: Schema, writes: Sequence[ProfileWrite],
                     move: tuple[str, str] | None = None) -> bool:
        """Hand one atomic write to the store: True when done, False to compute it again."""
        outcome = await self.store.write_profiles(schema.generation, writes, move)
        if outcome.status == "ok":
            return True
        if outcome.status == "retry":
            return False
        raise self._refusal(schema, outcome)

    def _write_of(self, schema: Schema, customer_id: str, version: bytes | None, profile: ProfileData,
                  extensions: Sequence[str] | None = None) -> ProfileWrite:
        members, unique = index_entries(schema, customer_id, profile)
        set_fields, deleted = _fields(profile, extensions)
        return ProfileWrite(customer_id, version, False, set_fields, deleted, tuple(members), tuple(unique))

    # --- profiles ----------------------------------------------------------------------------

    async def create(self, body: dict[str, Raw]) -> str:
        """POST /profiles: a new profile; its customer id."""
        if not self.core:
            raise ProfilesForbidden("the profile schema is empty: profiles cannot be created")
        for _ in range(RETRIES):
            schema = await self.schema()
            core, extensions = split_body(schema, body, None)
            profile = ProfileData(complete_core(schema, core))
            for name, raw in extensions.items():
                extension = schema.extension(name)
                value = records_value(extension, parse_records(extension, raw))
                if value is not None:
                    profile.extensions[name] = value
            customer_id = new_customer_id()
            if await self._write(schema, [self._write_of(schema, customer_id, None, profile)]):
                return customer_id
        raise self._refusal(schema, WriteOutcome("retry"))

    def _selected(self, schema: Schema, names: Sequence[str]) -> list[ExtensionSchema]:
        return [schema.extension(name) for name in dict.fromkeys(names)]

    def _rendered(self, customer_id: str, profile: ProfileData, core: bool,
                  extensions: Sequence[ExtensionSchema]) -> dict[str, Raw]:
        out: dict[str, Raw] = {"customer_id": Raw(_encode(customer_id))}
        if core:
            out.update(profile.core)
        for extension in extensions:
            value = profile.extensions.get(extension.name.lower())
            if value is not None:
                out[extension.name] = value
            elif extension.type == "multi-valued":
                out[extension.name] = Raw(b"[]")
        return out

    async def get(self, customer_id: str, extensions: Sequence[str]) -> dict[str, Raw]:
        """GET /profiles/{id}: core attributes and the extensions asked for."""
        schema = await self.schema()
        selected = self._selected(schema, extensions)
        _, profile = await self._read(customer_id)
        return self._rendered(customer_id, profile, True, selected)

    async def replace(self, customer_id: str, body: dict[str, Raw]) -> None:
        """PUT /profiles/{id}: core attributes replaced; each extension given replaced as a whole."""
        for _ in range(RETRIES):
            schema = await self.schema()
            version, profile = await self._read(customer_id)
            core, extensions = split_body(schema, body, customer_id)
            profile.core = complete_core(schema, core)
            for name, raw in extensions.items():
                extension = schema.extension(name)
                value = records_value(extension, parse_records(extension, raw))
                if value is None:
                    profile.extensions.pop(name, None)
                else:
                    profile.extensions[name] = value
            if await self._write(schema, [self._write_of(schema, customer_id, version, profile, list(extensions))]):
                return
        raise self._refusal(schema, WriteOutcome("retry"))

    async def delete(self, customer_id: str) -> None:
        """DELETE /profiles/{id}: the profile, its records and its index entries (not its services)."""
        for _ in range(RETRIES):
            schema = await self.schema()
            version, _ = await self._read(customer_id)
            if await self._write(schema, [ProfileWrite(customer_id, version, delete=True)]):
                return
        raise self._refusal(schema, WriteOutcome("retry"))

    async def insert_records(self, customer_id: str, body: dict[str, Raw]) -> None:
        """POST /profiles/{id}/extensions: records added, or replacing those with the same unique values."""
        for _ in range(RETRIES):
            schema = await self.schema()
            core, extensions = split_body(schema, body, customer_id)
            if core:
                raise ProfileRefused(f"{next(iter(core))!r} is a core attribute: this call takes extensions only")
            version, profile = await self._read(customer_id)
            for name, raw in extensions.items():
                extension = schema.extension(name)
                old = stored_records(extension, profile.extensions.get(name))
                value = records_value(extension, upsert_records(extension, old, parse_records(extension, raw)))
                if value is not None:
                    profile.extensions[name] = value
            if await self._write(schema, [self._write_of(schema, customer_id, version, profile, list(extensions))]):
                return
        raise self._refusal(schema, WriteOutcome("retry"))

    def _unique_record(self, extension: ExtensionSchema, body: Any, partial: bool) -> Record:
        if extension.type != "multi-valued" or not extension.unique:
            raise ProfileRefused(f"{extension.name} is not a multi-valued extension with unique attributes")
        if not isinstance(body, dict):
            raise ProfileRefused("the body is a JSON object: the record's unique attributes (and others)")
        if not partial:  # a delete reads the unique attributes only
            wanted = {u.lower() for u in extension.unique}
            body = {k: v for k, v in body.items() if k.lower() in wanted}
        record = parse_records(extension, body, complete=False)[0]
        missing = [u for u in extension.unique if u not in record]
        if missing:
            raise ProfileRefused(f"unique attribute {missing[0]!r} is missing")
        return record

    async def _change_record(self, customer_id: str, name: str, body: Any, delete: bool) -> None:
        for _ in range(RETRIES):
            schema = await self.schema()
            extension = schema.extension(name)
            change = self._unique_record(extension, body, not delete)
            version, profile = await self._read(customer_id)
            lower = extension.name.lower()
            records = stored_records(extension, profile.extensions.get(lower))
            wanted = unique_values(extension, change)
            positions = [i for i, r in enumerate(records) if unique_values(extension, r) == wanted]
            if not positions:
                raise ProfileNotFound(f"{customer_id} has no {extension.name} record with these unique values")
            if delete:
                del records[positions[0]]
            else:
                records[positions[0]] = {**records[positions[0]], **change}
            value = records_value(extension, records)
            profile.extensions[lower] = value if value is not None else Raw(b"[]")
            if await self._write(schema, [self._write_of(schema, customer_id, version, profile, [lower])]):
                return
        raise self._refusal(schema, WriteOutcome("retry"))

    async def update_record(self, customer_id: str, name: str, body: Any) -> None:
        """PUT …/extensions/{ext}/by/unique: the record the unique values select, partially updated."""
        await self._change_record(customer_id, name, body, delete=False)

    async def delete_record(self, customer_id: str, name: str, body: Any) -> None:
        """PUT …/extensions/{ext}/delete/by/unique: the record the unique values select, removed."""
        await self._change_record(customer_id, name, body, delete=True)

    async def merge(self, customer_id: str, source_id: str, options: MergeOptions) -> None:
        """PUT /profiles/{id}/merge/{src}: the source's data into the destination, then the source
        deleted and its interactions re-assigned, all in one atomic step (PROFILES.md §3.5)."""
        if customer_id == source_id:
            raise ProfileRefused("a profile cannot be merged into itself")
        for _ in range(RETRIES):
            schema = await self.schema()
            version, destination = await self._read(customer_id)
            source_version, source = await self._read(source_id)
            merged = ProfileData(merged_core(destination.core, source.core), dict(destination.extensions))
            for extension in schema.live_extensions():
                lower = extension.name.lower()
                records = merged_records(extension, stored_records(extension, destination.extensions.get(lower)),
                                         stored_records(extension, source.extensions.get(lower)),
                                         options.keep_uniq_from_src)
                value = records_value(extension, records)
                if value is not None:
                    merged.extensions[lower] = value
            writes = [self._write_of(schema, customer_id, version, merged,
                                     [e.name.lower() for e in schema.live_extensions()]),
                      ProfileWrite(source_id, source_version, delete=True)]
            if await self._write(schema, writes, (source_id, customer_id)):
                return
        raise self._refusal(schema, WriteOutcome("retry"))

    # --- identify (PROFILES.md §3.4) -------------------------------------------------------------

    async def identify(self, parameters: Sequence[tuple[str, str]]) -> list[dict[str, Raw]]:
        """GET /profiles?…: the customers whose index entries hold the searched values."""
        control: dict[str, str] = {}
        search: dict[str, str] = {}
        for name, value in parameters:
            target = control if name in CONTROL_PARAMETERS else search
            lower = name if target is control else name.lower()
            if lower in target:
                raise ProfileRefused(f"parameter {name[:40]!r} is given twice")
            target[lower] = value
        if not search:
            raise ProfileRefused("identify needs at least one search parameter (`attr=value` or `ext.attr=value`)")
        include_profile = control.get("include_profile", "no").lower()
        if include_profile not in ("yes", "no"):
            raise ProfileRefused("`include_profile` is `yes` or `no`")
        include_extensions = control.get("include_extensions", "always").lower()
        if include_extensions not in ("always", "unique"):
            raise ProfileRefused("`include_extensions` is `always` or `unique`")
        schema = await self.schema()
        selected = self._selected(schema, _names(control.get("extensions")))
        key, covered = choose_key(schema, search, control.get("id_key"))
        prefix = search_prefix(schema, key, covered, search)
        if prefix is None:
            return []
        members = await self.store.index_range(prefix, IDENTIFY_LIMIT)
        customer_ids = [member[len(prefix):].decode() for member in members]
        if include_extensions == "unique" and len(customer_ids) != 1:
            selected = []
        if include_profile == "no" and not selected:
            return [{"customer_id": Raw(_encode(cid))} for cid in customer_ids]
        found = await self.store.read_profiles(customer_ids)
        return [self._rendered(cid, _profile(fields), include_profile == "yes", selected)
                for cid, fields in zip(customer_ids, found, strict=True) if fields]

    # --- the schema ------------------------------------------------------------------------------

    def profile_schema(self) -> list[AttributeSchema]:
        """GET /metadata/profiles: the core attributes."""
        return list(self.core)

    async def extensions(self) -> list[ExtensionSchema]:
        """GET /metadata/profiles/extensions."""
        return (await self.schema()).live_extensions()

    async def extension(self, name: str) -> ExtensionSchema:
        """GET /metadata/profiles/extensions/{name} (any case)."""
        found = (await self.schema()).extensions.get(name.lower())
        if found is None or found.state != READY:
            raise ProfileNotFound(f"no extension {name[:40]!r}")
        return found.schema

    async def _schema_write(self, schema: Schema, changes: Sequence[tuple[str, bytes]],
                            fresh: Sequence[str] = ()) -> str | None:
        outcome = await self.store.write_schema(schema.generation, changes, fresh)
        if outcome.status == "taken":
            raise ProfileConflict("the name is already used")
        return outcome.detail.decode() if outcome.status == "ok" else None

    async def create_extension(self, body: Any) -> str:
        """POST /metadata/profiles/extensions: a new extension schema; its name."""
        extension = parse_extension(body)
        for _ in range(RETRIES):
            schema = await self.schema()
            new_name_is_free(schema, extension.name)
            if len(schema.extensions) >= MAX_EXTENSIONS:
                raise ProfileConflict(f"at most {MAX_EXTENSIONS} extensions")
            field = "x:" + extension.name.lower()
            if await self._schema_write(schema, [(field, _encode(StoredExtension(extension)))], [field]):
                return extension.name
        raise self._refusal(schema, WriteOutcome("retry"))

    async def delete_extension(self, name: str) -> None:
        """DELETE /metadata/profiles/extensions/{name}: the schema and every customer's records.

        Refused (409) while an identification key uses it. Marked `dropping` first (profiles no
        longer see it), then its records are removed in batches, then the schema; a DELETE after
        a crash resumes the job.
        """
        lower = name.lower()
        for _ in range(RETRIES):
            schema = await self.schema()
            stored = schema.extensions.get(lower)
            if stored is None:
                raise ProfileNotFound(f"no extension {name[:40]!r}")
            users = [k.name for k in schema.keys.values() if k.source.lower() == lower]
            if users:
                raise ProfileConflict(f"identification key {users[0]!r} uses extension {stored.schema.name!r}")
            if stored.state == DROPPING:
                break
            if await self._schema_write(schema, [("x:" + lower, _encode(StoredExtension(stored.schema, DROPPING)))]):
                break
        after = ""
        while True:
            batch = await self.store.customer_ids(after, BATCH)
            await self.store.drop_field(batch, "x:" + lower)
            if len(batch) < BATCH:
                break
            after = batch[-1]
        for _ in range(RETRIES):
            schema = await self.schema()
            stored = schema.extensions.get(lower)
            if stored is None or stored.state != DROPPING:
                return
            if await self._schema_write(schema, [("x:" + lower, b"")]):
                return

    async def keys(self) -> list[IdentificationKey]:
        """GET /metadata/identification-keys, in creation order."""
        return [msgspec.convert(key_answer(k), IdentificationKey) for k in (await self.schema()).ready_keys()]

    async def key(self, name: str) -> IdentificationKey:
        """GET /metadata/identification-keys/{name} (any case)."""
        found = (await self.schema()).keys.get(name.lower())
        if found is None or found.state != READY:
            raise ProfileNotFound(f"no identification key {name[:40]!r}")
        return msgspec.convert(key_answer(found), IdentificationKey)

    async def create_key(self, body: Any) -> str:
        """POST /metadata/identification-keys: the key, published once every profile is indexed.

        The key enters the schema as `building` (every write from then on maintains its entries),
        existing profiles are indexed in batches, then it becomes `ready`. A unique key that the
        data already repeats is dropped again: 409.
        """
        name = check_name(body.get("name") if isinstance(body, dict) else None, "identification key name")
        lower = name.lower()
        for _ in range(RETRIES):
            schema = await self.schema()
            if lower in schema.keys:
                raise ProfileConflict(f"an identification key named {schema.keys[lower].name!r} exists")
            if len(schema.keys) >= MAX_KEYS:
                raise ProfileConflict(f"at most {MAX_KEYS} identification keys")
            key = parse_key(schema, body, schema.key_sequence + 1)
            field = "k:" + lower
            if await self._schema_write(schema, [(field, _encode(key)), ("kseq", str(key.number).encode())], [field]):
                break
        else:
            raise self._refusal(schema, WriteOutcome("retry"))
        try:
            await self._fill(key)
        except ProfileConflict:
            await self._drop_key(lower)
            raise
        await self._set_key_state(lower, key.number, READY)
        return key.name

    async def _fill(self, key: StoredKey) -> None:
        after = ""
        own = key_prefix(key)
        while True:
            batch = await self.store.customer_ids(after, BATCH)
            for _ in range(RETRIES):
                schema = await self.schema()
                current = schema.keys.get(key.name.lower())
                if current is None or current.number != key.number:
                    raise ProfileConflict(f"identification key {key.name!r} was deleted while being built")
                fills = []
                for cid, fields in zip(batch, await self.store.read_profiles(batch), strict=True):
                    if not fields or any(m.startswith(own) for m in fields.get(b"ix", b"").split(b"\1")):
                        continue
                    members, unique = key_entries(schema, current, cid, _profile(fields))
                    fills.append(IndexFill(cid, fields[b"v"], tuple(sorted(set(members))), tuple(sorted(set(unique)))))
                outcome = await self.store.fill_index(schema.generation, fills)
                if outcome.status == "ok":
                    break
                if outcome.status == "taken":
                    raise ProfileConflict(f"unique identification key {key.name!r}: existing customers share values")
            if len(batch) < BATCH:
                return
            after = batch[-1]

    async def _set_key_state(self, lower: str, number: int, state: str) -> bool:
        for _ in range(RETRIES):
            schema = await self.schema()
            current = schema.keys.get(lower)
            if current is None or current.number != number:
                return False
            if current.state == state:
                return True
            changed = msgspec.structs.replace(current, state=state)
            if await self._schema_write(schema, [("k:" + lower, _encode(changed))]):
                return True
        raise self._refusal(schema, WriteOutcome("retry"))

    async def delete_key(self, name: str) -> None:
        """DELETE /metadata/identification-keys/{name}: the key and its index (resumed after a crash)."""
        lower = name.lower()
        found = (await self.schema()).keys.get(lower)
        if found is None:
            raise ProfileNotFound(f"no identification key {name[:40]!r}")
        await self._drop_key(lower)

    async def _drop_key(self, lower: str) -> None:
        schema = await self.schema()
        key = schema.keys.get(lower)
        if key is None:
            return
        await self._set_key_state(lower, key.number, DROPPING)
        while await self.store.index_drop(key_prefix(key), 1000):
            pass
        for _ in range(RETRIES):
            schema = await self.schema()
            current = schema.keys.get(lower)
            if current is None or current.number != key.number:
                return
            if await self._schema_write(schema, [("k:" + lower, b"")]):
                return


def _names(text: str | None) -> list[str]:
    """`a,b` as names (empty parts dropped)."""
    if not text:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]
