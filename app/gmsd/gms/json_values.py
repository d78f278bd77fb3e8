"""GMS JSON values: a JSON object body becomes string parameters, as GMS converts them.

string -> itself; number -> its JSON text, exactly as sent; true/false/null -> "true"/"false"/
"null"; object -> "{k=v, k2=v2}"; array -> "[a, b]" (nested values the same way, strings
without quotes). This is what GMS does because ORS only takes flat string parameters.
"""

from __future__ import annotations

import msgspec

from gmsd.errors import CouldNotReadJson

_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_array = msgspec.json.Decoder(list[msgspec.Raw])
_string = msgspec.json.Decoder(str)


def gms_text(raw: msgspec.Raw | bytes) -> str:
    """The GMS string form of one JSON value given as its raw text."""
    text = bytes(raw).strip()
    first = text[:1]
    if first == b'"':
        return _string.decode(text)
    if first == b"{":
        return "{" + ", ".join(f"{k}={gms_text(v)}" for k, v in _object.decode(text).items()) + "}"
    if first == b"[":
        return "[" + ", ".join(gms_text(v) for v in _array.decode(text)) + "]"
    # Numbers, true, false, null: their JSON text is their GMS text (msgspec validated it).
    return text.decode()


def json_parameters(body: bytes) -> list[tuple[str, str]]:
    """Parameters of a JSON object body, in document order; malformed -> CouldNotReadJson."""
    try:
        document = _object.decode(body)
        return [(key, gms_text(raw)) for key, raw in document.items()]
    except msgspec.ValidationError as exc:
        raise CouldNotReadJson(f"the body must be a JSON object ({exc})") from None
    except msgspec.DecodeError as exc:
        raise CouldNotReadJson(str(exc)) from None
