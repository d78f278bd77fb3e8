"""HTTP handlers of customer profiles (UCS) and interactions under `/genesys/1/cs` (PROFILES.md §3, §4).

Each handler reads its request (JSON bodies only: another Content-Type is a 415), makes one call
into the domain (`CustomerProfiles` in `gmsd.ucs.profiles`, `Interactions` in
`gmsd.ucs.interactions`) and answers with the UCS status codes. Errors are rendered by
`gmsd.web.responses.error_response` with `message` and `exception`. `ContactCenterId` selects the
tenant's keyspace, as for services. Each handler is described for the OpenAPI document.
"""

from __future__ import annotations

import html
from typing import Any

import msgspec
from msgspec import Raw
from python_multipart.multipart import parse_options_header
from starlette.requests import Request
from starlette.responses import Response

from gmsd.config import Limits
from gmsd.errors import UnsupportedMediaType
from gmsd.ucs.errors import ProfileRefused
from gmsd.ucs.interactions import Interactions
from gmsd.ucs.models import (
    EXTENSION_BODY,
    PROFILE_OBJECT,
    AttributeSchema,
    CustomerCreated,
    ExtensionSchema,
    IdentificationKey,
    Interaction,
    InteractionCreated,
    InteractionImport,
    MergeOptions,
)
from gmsd.ucs.profiles import CustomerProfiles
from gmsd.ucs.schema import IDENTIFY_LIMIT
from gmsd.web.body import read_body, require_utf8
from gmsd.web.downloads import CHUNK_BYTES, DOWNLOAD_HEADERS, Download, attachment
from gmsd.web.openapi import JSON, Answer, Api, Param
from gmsd.web.paths import CS_PREFIX
from gmsd.web.responses import CsErrorBody, empty_response, json_response
from gmsd.web.routing import Resource
from gmsd.web.tenants import tenant_space

PREFIX = CS_PREFIX

# --- reading requests -------------------------------------------------------------------------


def profiles(request: Request) -> CustomerProfiles:
    """The profile operations for this request, on its tenant's keyspace (403 when disabled)."""
    api: CustomerProfiles = request.app.state.ucs
    api.require_enabled()
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


def interactions(request: Request) -> Interactions:
    """The interaction operations for this request, on its tenant's keyspace (403 when disabled)."""
    profiles(request)
    api: Interactions = request.app.state.ucs_interactions
    space = tenant_space(request)
    return api if space is None else api.in_space(space)


async def _body(request: Request) -> bytes | None:
    """The JSON body's bytes (None: no body); 415 for another Content-Type."""
    limits: Limits = request.app.state.ucs_limits
    body = await read_body(request, limits)
    if not body.strip():
        return None
    header = request.headers.get("content-type")
    if header is None or parse_options_header(header)[0] != b"application/json":
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    require_utf8(body)
    return body


async def json_body(request: Request) -> Any:
    """The body as plain JSON (None: no body)."""
    body = await _body(request)
    if body is None:
        return None
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProfileRefused(f"the body is not valid JSON: {exc}") from None


async def object_body(request: Request, required: bool = True) -> dict[str, Raw]:
    """The body as a JSON object whose values are kept as sent."""
    body = await _body(request)
    if body is None:
        if required:
            raise ProfileRefused("the body must be a JSON object")
        return {}
    try:
        found: dict[str, Raw] = msgspec.json.decode(body, type=dict[str, Raw])
    except msgspec.ValidationError:
        raise ProfileRefused("the body must be a JSON object") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProfileRefused(f"the body is not valid JSON: {exc}") from None
    try:
        for value in found.values():  # every nested value must be JSON too
            msgspec.json.decode(value)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProfileRefused(f"the body is not valid JSON: {exc}") from None
    return found


def _extensions(request: Request) -> list[str]:
    text = request.query_params.get("extensions")
    return [] if not text else [part.strip() for part in text.split(",") if part.strip()]


def _base(request: Request) -> str:
    """`http://host:port/genesys/1/cs`, from the request (for the URLs in answers)."""
    return f"{request.url.scheme}://{request.url.netloc}{PREFIX}"


# --- what the OpenAPI document says ----------------------------------------------------------

_STRING = {"type": "string"}
_TENANT = Param("ContactCenterId", "header", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                "the tenant: each has a keyspace of its own (absent: the default tenant)")
UCS = Api("Customer profiles", CsErrorBody, {
    "customer_id": Param("customer_id", "path", _STRING, "a customer id (16 letters and digits)"),
    "src_id": Param("src_id", "path", _STRING, "the customer id of the profile merged in (then deleted)"),
    "ext": Param("ext", "path", _STRING, "an extension name (any case)"),
    "name": Param("name", "path", _STRING, "an extension or identification key name (any case)"),
    "service_id": Param("service_id", "path", _STRING, "a service id"),
    "interaction_id": Param("interaction_id", "path", _STRING, "an interaction id"),
}, headers=(_TENANT,))

_PROFILE = {**PROFILE_OBJECT, "required": ["customer_id"], "properties": {"customer_id": _STRING}}
_ANY_OBJECT = {"type": "object"}
_DONE = {200: Answer("done (no body)")}
_NO_CONTENT = {204: Answer("done (no body)")}
_EXTENSIONS = Param("extensions", "query", _STRING, "extensions to return, comma-separated (default: none)")
_WRITE_ERRORS = (400, 403, 404, 409, 413, 415, 503)


def _created(what: str, schema: Any = None) -> dict[int, Answer]:
    content = {} if schema is None else {JSON: schema}
    return {201: Answer(f"{what} created", content, {"Location": f"the URL of the new {what}"})}


# --- profiles ----------------------------------------------------------------------------------


@UCS.operation("Create a customer profile", body={JSON: PROFILE_OBJECT},
               answers=_created("profile", CustomerCreated), errors=(400, 403, 409, 413, 415, 503),
               description="Core attributes and extensions; a `customer_id` in the body is ignored. 403 when the "
                           "profile schema is empty; 409 when a unique identification key's values belong to "
                           "another customer.")
async def create_profile(request: Request) -> Response:
    """POST /profiles → 201 {"customer_id"} with Location."""
    api = profiles(request)
    customer_id = await api.create(await object_body(request))
    return json_response(CustomerCreated(customer_id), 201, {"location": f"{PREFIX}/profiles/{customer_id}"})


@UCS.operation("Identify customers from attribute values", params=(
    Param("id_key", "query", _STRING, "the identification key to use (default: chosen from the search)"),
    Param("include_profile", "query", {"type": "string", "enum": ["yes", "no"]}, "`yes`: with core attributes"),
    _EXTENSIONS,
    Param("include_extensions", "query", {"type": "string", "enum": ["always", "unique"]},
          "`unique`: extensions only when exactly one customer matches"),
    Param("search", "query", {"type": "object", "additionalProperties": _STRING},
          "the search: `attr=value` (core attributes) and `ext.attr=value` (extension attributes)")),
    answers={200: Answer(f"the matching customers by customer_id (at most {IDENTIFY_LIMIT})",
                         {JSON: {"type": "array", "items": _PROFILE}})},
    errors=(400, 403, 503))
async def identify(request: Request) -> Response:
    """GET /profiles?… → the customers whose identification entries hold the values."""
    api = profiles(request)
    return json_response(await api.identify(request.query_params.multi_items()))


@UCS.operation("Read a customer profile", params=(_EXTENSIONS,),
               answers={200: Answer("the profile", {JSON: _PROFILE})}, errors=(400, 403, 503))
async def get_profile(request: Request) -> Response:
    """GET /profiles/{customer_id}."""
    api = profiles(request)
    return json_response(await api.get(request.path_params["customer_id"], _extensions(request)))


@UCS.operation("Replace a customer profile's core attributes (and the extensions given)",
               body={JSON: PROFILE_OBJECT}, answers=_DONE, errors=_WRITE_ERRORS)
async def replace_profile(request: Request) -> Response:
    """PUT /profiles/{customer_id} → 200."""
    api = profiles(request)
    await api.replace(request.path_params["customer_id"], await object_body(request))
    return empty_response(200)


@UCS.operation("Delete a customer profile, its extension records and identification entries",
               answers=_DONE, errors=(400, 403, 503))
async def delete_profile(request: Request) -> Response:
    """DELETE /profiles/{customer_id} → 200."""
    api = profiles(request)
    await api.delete(request.path_params["customer_id"])
    return empty_response(200)


@UCS.operation("Insert extension records", body={JSON: PROFILE_OBJECT}, answers=_DONE, errors=_WRITE_ERRORS,
               description="A record with the same unique values as an existing one replaces it.")
async def insert_records(request: Request) -> Response:
    """POST /profiles/{customer_id}/extensions → 200."""
    api = profiles(request)
    await api.insert_records(request.path_params["customer_id"], await object_body(request))
    return empty_response(200)


@UCS.operation("Update the record its unique attributes select", body={JSON: _ANY_OBJECT}, answers=_NO_CONTENT,
               errors=_WRITE_ERRORS)
async def update_record(request: Request) -> Response:
    """PUT /profiles/{customer_id}/extensions/{ext}/by/unique → 204."""
    api = profiles(request)
    p = request.path_params
    await api.update_record(p["customer_id"], p["ext"], await json_body(request))
    return empty_response()


@UCS.operation("Delete the record its unique attributes select", body={JSON: _ANY_OBJECT},
               answers=_NO_CONTENT, errors=_WRITE_ERRORS)
async def delete_record(request: Request) -> Response:
    """PUT /profiles/{customer_id}/extensions/{ext}/delete/by/unique → 204."""
    api = profiles(request)
    p = request.path_params
    await api.delete_record(p["customer_id"], p["ext"], await json_body(request))
    return empty_response()


_MERGE_BODY = {"type": "object", "properties": {
    "keep_uniq_from_src": {"type": ["boolean", "string"]}, "keep_active_service_only": {"type": ["boolean", "string"]}}}


def _merge_options(body: Any) -> MergeOptions:
    if body is None:
        return MergeOptions()
    if not isinstance(body, dict):
        raise ProfileRefused("the merge body is a JSON object")
    flags = {}
    for name in ("keep_uniq_from_src", "keep_active_service_only"):
        value = body.get(name, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ProfileRefused(f"`{name}` must be true or false")
        flags[name] = value
    return MergeOptions(**flags)


@UCS.operation("Merge a profile into another (the source is then deleted)", body={JSON: _MERGE_BODY},
               answers=_NO_CONTENT, errors=_WRITE_ERRORS)
async def merge(request: Request) -> Response:
    """PUT /profiles/{customer_id}/merge/{src_id} → 204."""
    api = profiles(request)
    options = _merge_options(await json_body(request))
    p = request.path_params
    await api.merge(p["customer_id"], p["src_id"], options)
    return empty_response()


# --- metadata ----------------------------------------------------------------------------------

_RESOURCES = (("profiles schema", "/metadata/profiles"), ("profiles extensions", "/metadata/profiles/extensions"),
              ("identification-keys schemas", "/metadata/identification-keys"))


@UCS.operation("The metadata resources (JSON, or HTML when `Content-Type` or `Accept` is `text/html`)",
               answers={200: Answer("resource name → absolute URL", {
                   JSON: {"type": "object", "additionalProperties": _STRING},
                   "text/html": {"type": "string"}})}, errors=(400, 403))
async def metadata(request: Request) -> Response:
    """GET /metadata."""
    profiles(request)
    base = _base(request)
    wanted = {request.headers.get("content-type", ""), request.headers.get("accept", "")}
    if any(parse_options_header(value)[0] == b"text/html" for value in wanted if value):
        links = "".join(f'<a href="{html.escape(base + path)}">{html.escape(name)}</a><br/>'
                        for name, path in _RESOURCES)
        page = f"<html><body><h1>Available Resources</h1><br/>{links}</body></html>"
        return Response(page, 200, media_type="text/html")
    return json_response({name: base + path for name, path in _RESOURCES})


@UCS.operation("The profile schema (core attributes)",
               answers={200: Answer("the core attributes", {JSON: list[AttributeSchema]})}, errors=(400, 403))
async def profile_schema(request: Request) -> Response:
    """GET /metadata/profiles."""
    return json_response(profiles(request).profile_schema())


@UCS.operation("Create a profile extension schema", body={JSON: EXTENSION_BODY}, answers=_created("extension"),
               errors=(400, 403, 409, 413, 415, 503))
async def create_extension(request: Request) -> Response:
    """POST /metadata/profiles/extensions → 201 with Location."""
    api = profiles(request)
    name = await api.create_extension(await json_body(request))
    return empty_response(201, {"location": f"{PREFIX}/metadata/profiles/extensions/{name}"})


@UCS.operation("The profile extension schemas",
               answers={200: Answer("the extension schemas", {JSON: list[ExtensionSchema]})}, errors=(400, 403, 503))
async def list_extensions(request: Request) -> Response:
    """GET /metadata/profiles/extensions."""
    return json_response(await profiles(request).extensions())


@UCS.operation("One profile extension schema", answers={200: Answer("the schema", {JSON: ExtensionSchema})},
               errors=(400, 403, 503))
async def get_extension(request: Request) -> Response:
    """GET /metadata/profiles/extensions/{name}."""
    return json_response(await profiles(request).extension(request.path_params["name"]))


@UCS.operation("Delete a profile extension schema and every customer's records of it", answers=_NO_CONTENT,
               errors=(400, 403, 409, 503), description="409 while an identification key uses the extension.")
async def delete_extension(request: Request) -> Response:
    """DELETE /metadata/profiles/extensions/{name} → 204."""
    await profiles(request).delete_extension(request.path_params["name"])
    return empty_response()


_KEY_BODY = {"type": "object", "required": ["name", "attributes"], "properties": {
    "name": _STRING, "source": _STRING, "attributes": {"type": "array", "items": _STRING},
    "unique": {"type": ["boolean", "string"]}}}


@UCS.operation("Create an identification key (existing profiles are indexed before the answer)",
               body={JSON: _KEY_BODY}, answers=_created("identification key"), errors=(400, 403, 409, 413, 415, 503))
async def create_key(request: Request) -> Response:
    """POST /metadata/identification-keys → 201 with Location."""
    api = profiles(request)
    name = await api.create_key(await json_body(request))
    return empty_response(201, {"location": f"{PREFIX}/metadata/identification-keys/{name}"})


@UCS.operation("The identification keys, in creation order",
               answers={200: Answer("the keys", {JSON: list[IdentificationKey]})}, errors=(400, 403, 503))
async def list_keys(request: Request) -> Response:
    """GET /metadata/identification-keys."""
    return json_response(await profiles(request).keys())


@UCS.operation("One identification key", answers={200: Answer("the key", {JSON: IdentificationKey})},
               errors=(400, 403, 503))
async def get_key(request: Request) -> Response:
    """GET /metadata/identification-keys/{name}."""
    return json_response(await profiles(request).key(request.path_params["name"]))


@UCS.operation("Delete an identification key and its index", answers=_NO_CONTENT, errors=(400, 403, 503))
async def delete_key(request: Request) -> Response:
    """DELETE /metadata/identification-keys/{name} → 204."""
    await profiles(request).delete_key(request.path_params["name"])
    return empty_response()


# --- interactions ------------------------------------------------------------------------------

_INTERACTIONS = {200: Answer("the interactions, newest first", {JSON: list[Interaction]})}


@UCS.operation("The interactions of a customer", answers=_INTERACTIONS, errors=(400, 403, 503))
async def customer_interactions(request: Request) -> Response:
    """GET /customers/{customer_id}/interactions."""
    api = interactions(request)
    return json_response(await api.of_customer(request.path_params["customer_id"], _base(request)))


@UCS.operation("The interactions of a service", answers=_INTERACTIONS, errors=(400, 403, 503))
async def service_interactions(request: Request) -> Response:
    """GET /services/{service_id}/interactions."""
    api = interactions(request)
    return json_response(await api.of_service(request.path_params["service_id"], _base(request)))


@UCS.operation("Import an interaction (a gmsd extension: load contact history)", body={JSON: InteractionImport},
               answers=_created("interaction", InteractionCreated), errors=(400, 403, 409, 413, 415, 503))
async def import_interaction(request: Request) -> Response:
    """POST /interactions → 201 {"interaction_id"} with Location."""
    api = interactions(request)
    body = await _body(request)
    if body is None:
        raise ProfileRefused("the body must be a JSON object with at least `media_type`")
    try:
        event = msgspec.json.decode(body, type=InteractionImport)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProfileRefused(f"the body is not an interaction: {exc}") from None
    interaction_id = await api.add(event)
    return json_response(InteractionCreated(interaction_id), 201,
                         {"location": f"{PREFIX}/interactions/{interaction_id}"})


@UCS.operation("Read an interaction", answers={200: Answer("the interaction", {JSON: Interaction})},
               errors=(400, 403, 503))
async def get_interaction(request: Request) -> Response:
    """GET /interactions/{interaction_id}."""
    api = interactions(request)
    return json_response(await api.get(request.path_params["interaction_id"], _base(request)))


@UCS.operation("Delete an imported interaction (a gmsd extension)", answers=_DONE, errors=(400, 403, 503))
async def delete_interaction(request: Request) -> Response:
    """DELETE /interactions/{interaction_id} → 200."""
    await interactions(request).delete(request.path_params["interaction_id"])
    return empty_response(200)


_CONTENT = {200: Answer("the content with its stored type", {"*/*": {"type": "string"}},
                        {"X-Content-Type-Options": "`nosniff`",
                         "Content-Disposition": "`attachment` (binary content only)"})}


def _content_handler(name: str) -> Any:
    @UCS.operation(f"The {name.replace('_', ' ')} of an interaction", answers=_CONTENT, errors=(400, 403, 503))
    async def content(request: Request) -> Response:
        api = interactions(request)
        data, kind = await api.content(request.path_params["interaction_id"], name)
        headers = {"content-type": kind, **DOWNLOAD_HEADERS}
        if name == "binary_content":
            headers["content-disposition"] = attachment(None)
        if len(data) <= CHUNK_BYTES:
            return Response(data, 200, headers)
        return Download(data, headers)

    content.__doc__ = f"GET /interactions/{{interaction_id}}/{name}."
    return content


routes = [
    Resource(PREFIX + "/profiles", {"POST": create_profile, "GET": identify}),
    Resource(PREFIX + "/profiles/{customer_id}", {"GET": get_profile, "PUT": replace_profile,
                                                  "DELETE": delete_profile}),
    Resource(PREFIX + "/profiles/{customer_id}/extensions", {"POST": insert_records}),
    Resource(PREFIX + "/profiles/{customer_id}/extensions/{ext}/by/unique", {"PUT": update_record}),
    Resource(PREFIX + "/profiles/{customer_id}/extensions/{ext}/delete/by/unique", {"PUT": delete_record}),
    Resource(PREFIX + "/profiles/{customer_id}/merge/{src_id}", {"PUT": merge}),
    Resource(PREFIX + "/metadata", {"GET": metadata}),
    Resource(PREFIX + "/metadata/profiles", {"GET": profile_schema}),
    Resource(PREFIX + "/metadata/profiles/extensions", {"POST": create_extension, "GET": list_extensions}),
    Resource(PREFIX + "/metadata/profiles/extensions/{name}", {"GET": get_extension, "DELETE": delete_extension}),
    Resource(PREFIX + "/metadata/identification-keys", {"POST": create_key, "GET": list_keys}),
    Resource(PREFIX + "/metadata/identification-keys/{name}", {"GET": get_key, "DELETE": delete_key}),
    Resource(PREFIX + "/customers/{customer_id}/interactions", {"GET": customer_interactions}),
    Resource(PREFIX + "/services/{service_id}/interactions", {"GET": service_interactions}),
    Resource(PREFIX + "/interactions", {"POST": import_interaction}),
    Resource(PREFIX + "/interactions/{interaction_id}", {"GET": get_interaction, "DELETE": delete_interaction}),
    *(Resource(PREFIX + f"/interactions/{{interaction_id}}/{name}", {"GET": _content_handler(name)})
      for name in ("plain_text", "structured_text", "binary_content")),
]
