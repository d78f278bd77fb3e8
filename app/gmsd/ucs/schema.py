"""The profile schema, extension schemas and identification keys: names, values, index entries.

Pure functions and values (no HTTP, no Redis). A profile is kept as the JSON its client sent:
core attributes as `{name: raw JSON}` (a value, or an array whose first value is the primary one),
each extension as one raw JSON value (an object, or an array of record objects). This module
checks bodies against the schema (PROFILES.md §3.1), computes the identification index entries of
a profile (every left prefix of every key, §3.1) and chooses the key of an identify (§3.4).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgspec
from msgspec import Raw

from gmsd.timestamps import parse_timestamp
from gmsd.ucs.errors import ProfileConflict, ProfileRefused
from gmsd.ucs.models import (
    ATTRIBUTE_TYPES,
    BUILDING,
    READY,
    AttributeSchema,
    ExtensionSchema,
    StoredExtension,
    StoredKey,
)

# --- limits (every size is bounded; docs/api/profiles.md lists them) ------------------------
MAX_NAME = 26
MAX_ATTRIBUTES = 64  # per extension schema (and in the configured profile schema)
MAX_EXTENSIONS = 64
MAX_KEYS = 32
MAX_KEY_ATTRIBUTES = 8
MAX_VALUES = 64  # values of one multi-valued core attribute
MAX_RECORDS = 256  # records of one multi-valued extension
MAX_STRING = 4096  # characters of a string value whose attribute has no `length`
MAX_LENGTH = 65536  # the largest `length` an attribute may declare
MAX_COMBINATIONS = 64  # index entries of one key for one customer
IDENTIFY_LIMIT = 1000  # customers one identify answers (the first ones by customer_id)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,25}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INT64 = (-(2**63), 2**63 - 1)
PROFILE_SOURCE = "profile"
RESERVED = "customer_id"

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def check_name(name: Any, what: str) -> str:
    """`name` if it is a valid extension, attribute or key name (letter, then letters, digits, `_`; ≤ 26)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        shown = repr(name)[:60]
        raise ProfileRefused(f"{what} {shown} must start with a letter, then letters, digits or `_`, "
                             f"at most {MAX_NAME} characters")
    return name


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ProfileRefused(f"{what} must be true or false")


def index_text(attribute: AttributeSchema, value: Any, where: str) -> str:
    """The value checked against its attribute, as the index compares it (numbers as numbers).

    Raises ProfileRefused (400) for a value of the wrong type or a string over its length.
    """
    kind = attribute.type
    if kind == "string":
        if not isinstance(value, str):
            raise ProfileRefused(f"{where}: a string is expected")
        limit = attribute.length if attribute.length is not None else MAX_STRING
        if len(value) > limit:
            raise ProfileRefused(f"{where}: longer than {limit} characters")
        return value
    if kind in ("integer", "long"):
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value):
            number = int(value)
        if number is None or not _INT64[0] <= number <= _INT64[1]:
            raise ProfileRefused(f"{where}: a signed 64-bit integer (or a string of digits) is expected")
        return str(number)
    if kind in ("double", "currency"):
        real: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            real = float(value)
        elif isinstance(value, str) and len(value) <= 64:
            try:
                real = float(value)
            except ValueError:
                real = None
        if real is None or not math.isfinite(real):
            raise ProfileRefused(f"{where}: a number (or a numeric string) is expected")
        return repr(real)
    if kind == "boolean":
        return "true" if _flag(value, where) else "false"
    if kind == "date":
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                date.fromisoformat(value)
                return value
            except ValueError:
                pass
        raise ProfileRefused(f"{where}: a date YYYY-MM-DD is expected")
    if isinstance(value, str):  # datetime
        try:
            parse_timestamp(value)
            return value
        except ValueError:
            pass
    raise ProfileRefused(f"{where}: an ISO 8601 date and time is expected")


def parse_attribute(raw: Any, where: str) -> AttributeSchema:
    """An Attribute Schema from its JSON (PROFILES.md §3.1: `encrypt`, `unique` accepted and ignored)."""
    if not isinstance(raw, dict):
        raise ProfileRefused(f"{where}: an attribute schema is an object")
    unknown = set(raw) - {"name", "type", "length", "default", "mandatory", "unique", "encrypt"}
    if unknown:
        raise ProfileRefused(f"{where}: unknown field {sorted(unknown)[0][:40]!r}")
    name = check_name(raw.get("name"), f"{where}: attribute name")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind.lower() not in ATTRIBUTE_TYPES:
        raise ProfileRefused(f"{where}: `type` must be one of {', '.join(ATTRIBUTE_TYPES)}")
    length = raw.get("length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                               or not 0 < length <= MAX_LENGTH):
        raise ProfileRefused(f"{where}: `length` must be an integer from 1 to {MAX_LENGTH}")
    for flag in ("mandatory", "unique", "encrypt"):
        if flag in raw:
            _flag(raw[flag], f"{where}: `{flag}`")
    mandatory = _flag(raw.get("mandatory", False), f"{where}: `mandatory`")
    attribute = AttributeSchema(name, kind.lower(), mandatory, length)  # type: ignore[arg-type]
    if raw.get("default") is not None:
        default = raw["default"]
        index_text(attribute, default, f"{where}: `default`")
        attribute = AttributeSchema(name, attribute.type, mandatory, length, default)
    return attribute


def _attributes(raws: Any, where: str) -> list[AttributeSchema]:
    if not isinstance(raws, list):
        raise ProfileRefused(f"{where}: `attributes` must be an array")
    if len(raws) > MAX_ATTRIBUTES:
        raise ProfileRefused(f"{where}: at most {MAX_ATTRIBUTES} attributes")
    attributes = [parse_attribute(raw, f"{where}: attributes[{i}]") for i, raw in enumerate(raws)]
    seen: set[str] = set()
    for attribute in attributes:
        if attribute.name.lower() in seen:
            raise ProfileRefused(f"{where}: attribute {attribute.name!r} is defined twice")
        seen.add(attribute.name.lower())
    return attributes


def parse_extension(body: Any) -> ExtensionSchema:
    """An Extension Schema from its JSON body (checked; 400 otherwise)."""
    if not isinstance(body, dict):
        raise ProfileRefused("an extension schema is a JSON object")
    unknown = set(body) - {"name", "type", "attributes", "unique", "required"}
    if unknown:
        raise ProfileRefused(f"unknown field {sorted(unknown)[0][:40]!r}")
    name = check_name(body.get("name"), "extension name")
    kind = body.get("type")
    if kind not in ("single-valued", "multi-valued"):
        raise ProfileRefused("`type` must be `single-valued` or `multi-valued`")
    attributes = _attributes(body.get("attributes", []), f"extension {name}")
    by_name = {a.name.lower(): a for a in attributes}
    unique_raw = body.get("unique", [])
    if not isinstance(unique_raw, list) or not all(isinstance(u, str) for u in unique_raw):
        raise ProfileRefused("`unique` must be an array of attribute names")
    unique: list[str] = []
    for item in unique_raw:
        if item.lower() not in by_name:
            raise ProfileRefused(f"`unique`: {item[:40]!r} is not an attribute of the extension")
        if by_name[item.lower()].name not in unique:
            unique.append(by_name[item.lower()].name)
    required = _flag(body.get("required", False), "`required`")
    return ExtensionSchema(name, kind, attributes, unique, required)


# --- the schema of one request ------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """What one request works with: the core attributes, the extensions and keys of a tenant."""

    core: tuple[AttributeSchema, ...]
    extensions: Mapping[str, StoredExtension]  # by lower-case name, every state
    keys: Mapping[str, StoredKey]  # by lower-case name, every state
    generation: str = ""
    key_sequence: int = 0
    core_by_name: dict[str, AttributeSchema] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.core_by_name.update({a.name.lower(): a for a in self.core})

    def extension(self, name: str) -> ExtensionSchema:
        """The ready extension `name` (any case), or a 400 naming it."""
        found = self.extensions.get(name.lower())
        if found is None or found.state != READY:
            raise ProfileRefused(f"unknown extension {name[:40]!r}")
        return found.schema

    def live_extensions(self) -> list[ExtensionSchema]:
        """The extensions that profiles may use."""
        return [e.schema for e in self.extensions.values() if e.state == READY]

    def indexed_keys(self) -> list[StoredKey]:
        """The keys whose entries every write maintains (ready, and being built), by number.

        A key naming a core attribute that the configuration no longer has is left out.
        """
        return sorted((k for k in self.keys.values() if k.state in (READY, BUILDING) and self._resolvable(k)),
                      key=lambda k: k.number)

    def _resolvable(self, key: StoredKey) -> bool:
        return key.source != PROFILE_SOURCE or all(a.lower() in self.core_by_name for a in key.attributes)

    def ready_keys(self) -> list[StoredKey]:
        """The keys identify may use, by number (the lowest first)."""
        return [k for k in self.indexed_keys() if k.state == READY]


def schema_from_hash(core: tuple[AttributeSchema, ...], fields: Mapping[bytes, bytes]) -> Schema:
    """The schema from the tenant's schema hash (`ucs:{ucs}:schema`)."""
    extensions: dict[str, StoredExtension] = {}
    keys: dict[str, StoredKey] = {}
    for name, value in fields.items():
        if name.startswith(b"x:"):
            extensions[name[2:].decode()] = _decode(value, type=StoredExtension)
        elif name.startswith(b"k:"):
            keys[name[2:].decode()] = _decode(value, type=StoredKey)
    return Schema(core, extensions, keys, fields.get(b"gen", b"0").decode(), int(fields.get(b"kseq", b"0")))


# --- profile values --------------------------------------------------------------------------

Record = dict[str, Raw]


@dataclass
class ProfileData:
    """A profile in memory: core attributes by schema name, extension values by lower-case name."""

    core: dict[str, Raw] = field(default_factory=dict)
    extensions: dict[str, Raw] = field(default_factory=dict)


def as_list(value: Any) -> list[Any]:
    """A core attribute's values (a scalar is one value)."""
    return value if isinstance(value, list) else [value]


def _decoded(raw: Raw, where: str) -> Any:
    try:
        return _decode(raw)
    except msgspec.DecodeError:  # pragma: no cover - raws come from a decoded body
        raise ProfileRefused(f"{where}: not JSON") from None


def _checked_core_value(attribute: AttributeSchema, raw: Raw) -> None:
    value = _decoded(raw, attribute.name)
    values = as_list(value)
    if isinstance(value, list) and not 0 < len(values) <= MAX_VALUES:
        raise ProfileRefused(f"{attribute.name}: 1 to {MAX_VALUES} values")
    for i, item in enumerate(values):
        index_text(attribute, item, attribute.name if len(values) == 1 else f"{attribute.name}[{i}]")


def split_body(schema: Schema, body: dict[str, Raw], customer_id: str | None) -> tuple[dict[str, Raw], dict[str, Raw]]:
    """A profile body's core attributes (by schema name) and extensions (by lower-case name).

    `customer_id` in the body is ignored (None) or must equal the path's; unknown names are a 400.
    A JSON null is an absent attribute.
    """
    core: dict[str, Raw] = {}
    extensions: dict[str, Raw] = {}
    for name, raw in body.items():
        lower = name.lower()
        if lower == RESERVED:
            if customer_id is not None and _decoded(raw, name) != customer_id:
                raise ProfileRefused("`customer_id` in the body differs from the path")
            continue
        if bytes(raw) == b"null":
            continue
        attribute = schema.core_by_name.get(lower)
        if attribute is not None:
            if attribute.name in core:
                raise ProfileRefused(f"attribute {attribute.name!r} is given twice")
            _checked_core_value(attribute, raw)
            core[attribute.name] = raw
            continue
        stored = schema.extensions.get(lower)
        if stored is None or stored.state != READY:
            raise ProfileRefused(f"unknown attribute or extension {name[:40]!r}")
        if lower in extensions:
            raise ProfileRefused(f"extension {stored.schema.name!r} is given twice")
        extensions[lower] = raw
    return core, extensions


def complete_core(schema: Schema, core: dict[str, Raw]) -> dict[str, Raw]:
    """Core attributes with defaults filled in; a missing mandatory one is a 400."""
    out = dict(core)
    for attribute in schema.core:
        if attribute.name in out:
            continue
        if attribute.default is not None:
            out[attribute.name] = Raw(_encode(attribute.default))
        elif attribute.mandatory:
            raise ProfileRefused(f"mandatory attribute {attribute.name!r} is missing")
    return out


def _record(extension: ExtensionSchema, raw: Any, where: str, complete: bool = True) -> Record:
    if not isinstance(raw, dict):
        raise ProfileRefused(f"{where}: a record is a JSON object")
    by_name = {a.name.lower(): a for a in extension.attributes}
    record: Record = {}
    for name, value in raw.items():
        attribute = by_name.get(name.lower())
        if attribute is None:
            raise ProfileRefused(f"{where}: unknown attribute {name[:40]!r}")
        if attribute.name in record:
            raise ProfileRefused(f"{where}: attribute {attribute.name!r} is given twice")
        if value is None:
            continue
        index_text(attribute, value, f"{where}.{attribute.name}")
        record[attribute.name] = Raw(_encode(value))
    if complete:
        for attribute in extension.attributes:
            if attribute.name in record:
                continue
            if attribute.default is not None:
                record[attribute.name] = Raw(_encode(attribute.default))
            elif attribute.mandatory:
                raise ProfileRefused(f"{where}: mandatory attribute {attribute.name!r} is missing")
        for name in extension.unique:
            if name not in record:
                raise ProfileRefused(f"{where}: unique attribute {name!r} is missing")
    return record


def unique_values(extension: ExtensionSchema, record: Record) -> tuple[str, ...]:
    """The index texts of a record's unique attributes (what makes two records the same one)."""
    by_name = {a.name: a for a in extension.attributes}
    return tuple(index_text(by_name[n], _decode(record[n]), n) if n in record else "" for n in extension.unique)


def parse_records(extension: ExtensionSchema, raw: Raw | Any, complete: bool = True) -> list[Record]:
    """The records of an extension value as sent: one object (single-valued), objects (multi-valued).

    A multi-valued extension also takes one object (one record). Two records with the same unique
    values in one value are a 400.
    """
    value = _decoded(raw, extension.name) if isinstance(raw, Raw) else raw
    if extension.type == "single-valued":
        if not isinstance(value, dict):
            raise ProfileRefused(f"{extension.name}: a single-valued extension is one JSON object")
        return [_record(extension, value, extension.name, complete)]
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_RECORDS:
        raise ProfileRefused(f"{extension.name}: at most {MAX_RECORDS} records")
    records = [_record(extension, item, f"{extension.name}[{i}]", complete) for i, item in enumerate(items)]
    if extension.unique:
        seen: set[tuple[str, ...]] = set()
        for record in records:
            values = unique_values(extension, record)
            if values in seen:
                raise ProfileRefused(f"{extension.name}: two records have the same unique values")
            seen.add(values)
    return records


def stored_records(extension: ExtensionSchema, raw: Raw | None) -> list[Record]:
    """The records of a stored extension value (no checks: it was checked when written)."""
    if raw is None:
        return []
    value = _decode(raw, type=list[dict[str, Raw]] | dict[str, Raw])
    return value if isinstance(value, list) else [value]


def records_value(extension: ExtensionSchema, records: Sequence[Record]) -> Raw | None:
    """The JSON to store for an extension's records (None: no record left)."""
    if extension.type == "single-valued":
        return Raw(_encode(records[0])) if records else None
    if len(records) > MAX_RECORDS:
        raise ProfileRefused(f"{extension.name}: at most {MAX_RECORDS} records")
    return Raw(_encode(list(records)))


def upsert_records(extension: ExtensionSchema, old: list[Record], new: list[Record]) -> list[Record]:
    """Records after inserting `new` (PROFILES.md §3.3): same unique values replace, others are added."""
    if extension.type == "single-valued":
        return new[-1:]
    if not extension.unique:
        return [*old, *new]
    out = list(old)
    positions = {unique_values(extension, r): i for i, r in enumerate(out)}
    for record in new:
        values = unique_values(extension, record)
        if values in positions:
            out[positions[values]] = record
        else:
            positions[values] = len(out)
            out.append(record)
    return out


# --- merge (PROFILES.md §3.5) ------------------------------------------------------------------


def merged_core(destination: dict[str, Raw], source: dict[str, Raw]) -> dict[str, Raw]:
    """Core attributes after a merge: the destination's values, then the source's it lacks."""
    out = dict(destination)
    for name, raw in source.items():
        if name not in out:
            out[name] = raw
            continue
        mine = _decode(out[name])
        values = as_list(mine)
        added = [v for v in as_list(_decode(raw)) if v not in values]
        if added:
            if len(values) + len(added) > MAX_VALUES:
                raise ProfileRefused(f"{name}: the merge would give more than {MAX_VALUES} values")
            out[name] = Raw(_encode([*values, *added]))
    return out


def merged_records(extension: ExtensionSchema, destination: list[Record], source: list[Record],
                   keep_from_source: bool) -> list[Record]:
    """An extension's records after a merge (rules 3 and 4 of §3.5)."""
    if extension.type == "single-valued":
        if destination and source:
            return source[:1] if keep_from_source else destination[:1]
        return destination[:1] or source[:1]
    if not extension.unique:
        return [*destination, *source]
    out = list(destination)
    positions = {unique_values(extension, r): i for i, r in enumerate(out)}
    for record in source:
        values = unique_values(extension, record)
        if values not in positions:
            positions[values] = len(out)
            out.append(record)
        elif keep_from_source:
            out[positions[values]] = record
    return out


# --- the identification index (PROFILES.md §3.1, docs/keys.md) ----------------------------------


def member_text(text: str) -> bytes:
    """A value made safe for an index member: `%`, NUL and `\\1` percent-escaped (they separate)."""
    return text.encode("utf-8").replace(b"%", b"%25").replace(b"\0", b"%00").replace(b"\1", b"%01")


def entry_prefix(key: StoredKey, texts: Sequence[str]) -> bytes:
    """The members of `key`'s entries for these leading values start with this (`<n>.<k>\\0v1\\0…\\0`)."""
    head = f"{key.number}.{len(texts)}\0".encode()
    return head + b"".join(member_text(t) + b"\0" for t in texts)


def key_prefix(key: StoredKey) -> bytes:
    """Every member of `key` starts with this."""
    return f"{key.number}.".encode()


def _key_attributes(schema: Schema, key: StoredKey) -> list[AttributeSchema]:
    if key.source == PROFILE_SOURCE:
        return [schema.core_by_name[a.lower()] for a in key.attributes]
    stored = schema.extensions[key.source.lower()]
    by_name = {a.name.lower(): a for a in stored.schema.attributes}
    return [by_name[a.lower()] for a in key.attributes]


def _prefix_entries(key: StoredKey, columns: list[list[str]], customer_id: str) -> tuple[list[bytes], list[bytes]]:
    """Entries for every left prefix of the available columns; the unique prefixes of full tuples."""
    entries: list[bytes] = []
    unique: list[bytes] = []
    full = 1
    for column in columns:
        full *= len(column)
    if full > MAX_COMBINATIONS:
        raise ProfileRefused(f"identification key {key.name!r}: more than {MAX_COMBINATIONS} value combinations")
    tail = customer_id.encode()
    for k in range(1, len(columns) + 1):
        for combination in itertools.product(*columns[:k]):
            prefix = entry_prefix(key, combination)
            entries.append(prefix + tail)
            if key.unique and k == len(key.attributes):
                unique.append(prefix)
    return entries, unique


def index_entries(schema: Schema, customer_id: str, profile: ProfileData) -> tuple[list[bytes], list[bytes]]:
    """Every index member of a profile (keys ready or being built), and the prefixes that must be
    free of other customers (the full tuples of `unique` keys)."""
    entries: list[bytes] = []
    unique: list[bytes] = []
    for key in schema.indexed_keys():
        found = key_entries(schema, key, customer_id, profile)
        entries += found[0]
        unique += found[1]
    return sorted(set(entries)), sorted(set(unique))


def key_entries(schema: Schema, key: StoredKey, customer_id: str,
                profile: ProfileData) -> tuple[list[bytes], list[bytes]]:
    """The index members of one key for one profile (see `index_entries`)."""
    attributes = _key_attributes(schema, key)
    entries: list[bytes] = []
    unique: list[bytes] = []
    if key.source == PROFILE_SOURCE:
        columns: list[list[str]] = []
        for attribute in attributes:
            raw = profile.core.get(attribute.name)
            if raw is None:
                break
            columns.append(sorted({index_text(attribute, v, attribute.name) for v in as_list(_decode(raw))}))
        if columns:
            entries, unique = _prefix_entries(key, columns, customer_id)
        return entries, unique
    extension = schema.extensions[key.source.lower()].schema
    for record in stored_records(extension, profile.extensions.get(extension.name.lower())):
        columns = []
        for attribute in attributes:
            raw = record.get(attribute.name)
            if raw is None:
                break
            columns.append([index_text(attribute, _decode(raw), attribute.name)])
        if columns:
            found = _prefix_entries(key, columns, customer_id)
            entries += found[0]
            unique += found[1]
    return entries, unique


def parse_key(schema: Schema, body: Any, number: int) -> StoredKey:
    """An Identification Key from its JSON body, checked against the schema (400), numbered."""
    if not isinstance(body, dict):
        raise ProfileRefused("an identification key is a JSON object")
    unknown = set(body) - {"name", "source", "attributes", "unique"}
    if unknown:
        raise ProfileRefused(f"unknown field {sorted(unknown)[0][:40]!r}")
    name = check_name(body.get("name"), "identification key name")
    source = body.get("source", PROFILE_SOURCE)
    if not isinstance(source, str):
        raise ProfileRefused("`source` must be `profile` or an extension name")
    raws = body.get("attributes")
    if not isinstance(raws, list) or not raws or not all(isinstance(a, str) for a in raws):
        raise ProfileRefused("`attributes` must be a non-empty array of attribute names")
    if len(raws) > MAX_KEY_ATTRIBUTES:
        raise ProfileRefused(f"`attributes`: at most {MAX_KEY_ATTRIBUTES}")
    unique = _flag(body.get("unique", False), "`unique`")
    if source.lower() == PROFILE_SOURCE:
        by_name = schema.core_by_name
        canonical_source = PROFILE_SOURCE
    else:
        extension = schema.extension(source)
        by_name = {a.name.lower(): a for a in extension.attributes}
        canonical_source = extension.name
    attributes: list[str] = []
    for raw in raws:
        plain = raw
        if canonical_source != PROFILE_SOURCE and raw.lower().startswith(canonical_source.lower() + "."):
            plain = raw[len(canonical_source) + 1:]
        attribute = by_name.get(plain.lower())
        if attribute is None:
            raise ProfileRefused(f"`attributes`: {raw[:60]!r} is not an attribute of {canonical_source}")
        if attribute.name in attributes:
            raise ProfileRefused(f"`attributes`: {attribute.name!r} is given twice")
        attributes.append(attribute.name)
    return StoredKey(name, number, canonical_source, attributes, unique, BUILDING)


def key_references(key: StoredKey) -> list[str]:
    """The key's attributes as an identify names them (`attr`, or `ext.attr`), lower-case."""
    if key.source == PROFILE_SOURCE:
        return [a.lower() for a in key.attributes]
    return [f"{key.source.lower()}.{a.lower()}" for a in key.attributes]


def choose_key(schema: Schema, search: Mapping[str, str], id_key: str | None) -> tuple[StoredKey, int]:
    """The key of an identify and how many of its leading attributes the search covers (§3.4)."""
    if id_key is not None:
        chosen = schema.keys.get(id_key.lower())
        if chosen is None or chosen not in schema.ready_keys():
            raise ProfileRefused(f"unknown identification key {id_key[:40]!r}")
        covered = _covered(chosen, search)
        if covered == 0:
            raise ProfileRefused(f"the search gives no value for the first attribute of {chosen.name!r}")
        return chosen, covered
    best: tuple[StoredKey, int] | None = None
    for key in schema.ready_keys():
        covered = _covered(key, search)
        if covered == len(key.attributes):
            return key, covered
        if covered > 0 and (best is None or covered > best[1]):
            best = (key, covered)
    if best is None:
        raise ProfileRefused("no identification key matches the search parameters")
    return best


def _covered(key: StoredKey, search: Mapping[str, str]) -> int:
    covered = 0
    for reference in key_references(key):
        if reference not in search:
            break
        covered += 1
    return covered


def search_prefix(schema: Schema, key: StoredKey, covered: int, search: Mapping[str, str]) -> bytes | None:
    """The member prefix an identify reads; None when a value cannot match its attribute's type."""
    attributes = _key_attributes(schema, key)[:covered]
    texts: list[str] = []
    for reference, attribute in zip(key_references(key), attributes, strict=False):
        try:
            texts.append(index_text(attribute, search[reference], reference))
        except ProfileRefused:
            return None
    return entry_prefix(key, texts)


def key_answer(key: StoredKey) -> dict[str, Any]:
    """A key as answered: `source`, prefixed extension attributes, `unique` always present."""
    attributes = key.attributes if key.source == PROFILE_SOURCE else [f"{key.source}.{a}" for a in key.attributes]
    return {"name": key.name, "source": key.source, "attributes": attributes, "unique": key.unique}


def new_name_is_free(schema: Schema, name: str) -> None:
    """409 if an extension, a core attribute or `customer_id` already has this name (any case)."""
    lower = name.lower()
    if lower == RESERVED or lower in schema.core_by_name:
        raise ProfileConflict(f"{name!r} is the name of a core attribute")
    if lower in schema.extensions:
        raise ProfileConflict(f"an extension named {schema.extensions[lower].schema.name!r} exists")
