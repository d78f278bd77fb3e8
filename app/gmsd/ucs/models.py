"""Customer profile documents as msgspec Structs: schemas, identification keys, interactions.

Profiles themselves are free-form JSON objects whose attributes the profile schema defines: they
are read as `dict[str, msgspec.Raw]` (each value kept as the exact JSON the client sent) and
checked by `gmsd.ucs.schema`. The schema objects are read as plain JSON and checked by hand,
because the documented examples write booleans as strings (`"mandatory": "true"`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ATTRIBUTE_TYPES = ("string", "integer", "long", "double", "date", "datetime", "currency", "boolean")
AttributeType = Literal["string", "integer", "long", "double", "date", "datetime", "currency", "boolean"]
ExtensionType = Literal["single-valued", "multi-valued"]
# The state of a schema object while a multi-step job works on it (docs/keys.md).
READY, BUILDING, DROPPING = "ready", "building", "dropping"


class AttributeSchema(msgspec.Struct, omit_defaults=True, frozen=True):
    """One core or extension attribute: its name, type and constraints."""

    name: str
    type: AttributeType
    mandatory: bool
    length: int | None = None
    default: Any = None  # the default value (JSON), None: none


class ExtensionSchema(msgspec.Struct, frozen=True):
    """A profile extension: single-valued (one record) or multi-valued (records), its attributes."""

    name: str
    type: ExtensionType
    attributes: list[AttributeSchema]
    unique: list[str] = msgspec.field(default_factory=list)
    required: bool = False


class StoredExtension(msgspec.Struct, frozen=True):
    """An extension schema as kept in Redis: the schema and the state of its deletion."""

    schema: ExtensionSchema
    state: str = READY


class IdentificationKey(msgspec.Struct, frozen=True):
    """An identification key as answered: extension attributes prefixed `ext.attr`."""

    name: str
    source: str
    attributes: list[str]
    unique: bool = False


class StoredKey(msgspec.Struct, frozen=True):
    """An identification key as kept in Redis: its number (creation order), unprefixed attributes."""

    name: str
    number: int
    source: str  # "profile" or an extension's name as created
    attributes: list[str]
    unique: bool = False
    state: str = READY


class CustomerCreated(msgspec.Struct):
    """The answer of POST /profiles."""

    customer_id: str


class InteractionCreated(msgspec.Struct):
    """The answer of POST /interactions."""

    interaction_id: str


class InteractionImport(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /genesys/1/cs/interactions (a gmsd extension: load contact history)."""

    media_type: str
    interaction_id: str | None = None
    customer_id: str | None = None
    service_id: str | None = None
    external_id: str | None = None
    established_date: str | None = None
    released_date: str | None = None
    subject: str | None = None
    plain_text: str | None = None
    structured_text: str | None = None
    structured_text_type: str | None = None
    binary_content: str | None = None  # base64
    binary_content_type: str | None = None
    udata: dict[str, str] | None = None


class InteractionRecord(msgspec.Struct, omit_defaults=True):
    """What is stored of an interaction besides its contents and customer."""

    interaction_id: str
    media_type: str
    established_date: str
    external_id: str | None = None
    service_id: str | None = None
    released_date: str | None = None
    subject: str | None = None
    has_plain_text: bool = False
    has_structured_text: bool = False
    has_binary_content: bool = False
    udata: dict[str, str] | None = None


class Interaction(msgspec.Struct, omit_defaults=True):
    """An interaction as answered (contents are URLs to GET)."""

    interaction_id: str
    media_type: str
    established_date: str
    external_id: str | None = None
    customer_id: str | None = None
    service_id: str | None = None
    released_date: str | None = None
    subject: str | None = None
    text: str | None = None
    structured_text: str | None = None
    binary_content: str | None = None
    udata: dict[str, str] | None = None


class MergeOptions(msgspec.Struct):
    """The merge body's options that gmsd reads (others are accepted and ignored)."""

    keep_uniq_from_src: bool = False
    keep_active_service_only: bool = False


# For the OpenAPI document: what POST /metadata/profiles/extensions reads (checked by hand: the
# documented examples write `"mandatory": "true"` and types in any case).
EXTENSION_BODY: dict[str, Any] = {
    "type": "object", "required": ["name", "type"],
    "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                   "attributes": {"type": "array", "items": {"type": "object"}},
                   "unique": {"type": "array", "items": {"type": "string"}}, "required": {}},
}
# For the OpenAPI document: profile bodies and answers are objects of schema-defined attributes.
PROFILE_OBJECT: dict[str, Any] = {
    "type": "object",
    "description": "core attributes (a value or an array of values) and extensions (an object, or an array of "
                   "objects) by name, as the profile schema and the extension schemas define them",
}
