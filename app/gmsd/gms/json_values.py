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
# Each level of nesting decodes its value's text once more (the work grows with depth x size)
# and costs Python stack: deeper than this is refused, as GMS refuses what it cannot read.
MAX_DEPTH = 64


def gms_text(raw: msgspec.Raw | bytes, depth: int = 1) -> str:
    """The GMS string form of one JSON value given as its raw text (nested `depth` levels deep)."""
    text = bytes(raw).strip()
    first = text[:1]
    if first == b'"':
        return _string.decode(text)
    if first in (b"{", b"["):
        if depth >= MAX_DEPTH:
            raise CouldNotReadJson(f"the body nests objects and arrays deeper than {MAX_DEPTH} levels")
        if first == b"{":
            return "{" + ", ".join(f"{k}={gms_text(v, depth + 1)}" for k, v in _object.decode(text).items()) + "}"
        return "[" + ", ".join(gms_text(v, depth + 1) for v in _array.decode(text)) + "]"
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
    except RecursionError:  # msgspec's own bound on nesting, before ours
        raise CouldNotReadJson(f"the body nests objects and arrays deeper than {MAX_DEPTH} levels") from None
