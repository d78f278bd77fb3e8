"""Reading GMS request bodies (multipart, urlencoded, JSON) into parameters, within limits.

Limits are enforced while the body streams in: a body over `body_bytes` is refused as soon as
the bytes (or the Content-Length header) say so, a file over `file_bytes` as soon as it grows
past it, and the field count on each new part, so an oversize request never sits in memory.
How long a body may take is the connection's business (`gmsd.web.protocol`); this reader only
tells its deadline from a client that hung up.
python-multipart does the parsing; parts are collected straight into bytes because they go to
Redis as bytes anyway (no temporary files, no thread pool).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request
from starlette.types import Message

from gmsd.config import Limits
from gmsd.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from gmsd.types import Parameters, StoredFile
from gmsd.web.protocol import BODY_TIMED_OUT

_MULTIPART = b"multipart/form-data"
_URLENCODED = b"application/x-www-form-urlencoded"
_JSON = b"application/json"
# `declared` not looked up yet (None already means "the request has no Content-Length"); compared
# by identity, so not a one-byte value (CPython shares those with every bytes object made).
_UNREAD = b"<not looked up>"


async def read_body(request: Request, limits: Limits, declared: bytes | None = _UNREAD) -> bytes:
    """The whole body, refused with 413 past `limits.body_bytes` without reading the rest
    (`declared`: the Content-Length or None for none, when the caller has looked it up)."""
    # Not through `_limited_stream`: an async generator per request costs more than reading the
    # usual body (one message) does.
    _check_declared(request, limits, declared)
    chunk, more, received = _chunk(await request.receive(), request, limits, 0)
    if not more:
        return chunk
    chunks = [chunk]
    while more:
        chunk, more, received = _chunk(await request.receive(), request, limits, received)
        chunks.append(chunk)
    return b"".join(chunks)


async def _limited_stream(request: Request, limits: Limits, declared: bytes | None) -> AsyncIterator[bytes]:
    # Straight from the ASGI receive channel: Starlette's request.stream() adds a layer of
    # async generator per chunk for nothing we need.
    _check_declared(request, limits, declared)
    more, received = True, 0
    while more:
        chunk, more, received = _chunk(await request.receive(), request, limits, received)
        if chunk:
            yield chunk


def _content_headers(request: Request) -> tuple[bytes | None, bytes | None]:
    """The first Content-Type and Content-Length of the request, in one pass over its headers
    (Starlette's `request.headers` builds an object and scans the list once per name)."""
    content_type = content_length = None
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"content-length" and content_length is None:
            content_length = value
    return content_type, content_length


def _check_declared(request: Request, limits: Limits, declared: bytes | None) -> None:
    """413 at once when the Content-Length (`declared`, or the request's when `_UNREAD`) is over
    the limit."""
    if declared is _UNREAD:
        declared = _content_headers(request)[1]
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("invalid Content-Length")
        if int(declared) > limits.body_bytes:
            raise PayloadTooLarge(f"request body over the limit of {limits.body_bytes} bytes")


def _chunk(message: Message, request: Request, limits: Limits, received: int) -> tuple[bytes, bool, int]:
    """A receive() message's body bytes, whether more follow, and the body's bytes so far; a
    disconnect is an error, and so is a body past the limit."""
    if message["type"] == "http.disconnect":
        if request.scope.get(BODY_TIMED_OUT):  # gmsd.web.protocol's deadline, not the client
            raise RequestTimeout(f"the request body did not arrive within {limits.body_timeout:g} s")
        raise BadRequest("the client closed the connection before the body was complete")
    chunk: bytes = message.get("body", b"")
    received += len(chunk)
    if received > limits.body_bytes:
        raise PayloadTooLarge(f"request body over the limit of {limits.body_bytes} bytes")
    return chunk, message.get("more_body", False), received


def require_utf8(body: bytes, what: str = "the body") -> None:
    """400 unless `body` is UTF-8 (the contract: bodies are UTF-8; JSON decoders keep raw values
    unchecked, and a stored invalid byte would make every later answer that carries it invalid)."""
    if body.isascii():  # nearly every body: one pass in C, no copy
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 (invalid byte at {exc.start})") from None


JsonParameters = Callable[[bytes], Iterable[tuple[str, str]]]


async def read_parameters(request: Request, limits: Limits, from_json: JsonParameters) -> Parameters:
    """The parameters of a form-like body, in the order sent.

    multipart: text parts are strings, parts with a filename are files; urlencoded: strings;
    JSON: what `from_json` makes of the body (the API's own value conversion). No body at all:
    no parameters. Anything else: 415.
    """
    header, declared = _content_headers(request)
    if header is None:
        body = await read_body(request, limits, declared)
        if body.strip():
            raise UnsupportedMediaType("a body needs a Content-Type: multipart/form-data, "
                                       "application/x-www-form-urlencoded or application/json")
        return []
    media_type = media_type_of(header)
    if media_type == _URLENCODED:
        body = await read_body(request, limits, declared)
        return _urlencoded(body, limits)
    if media_type == _JSON:
        body = await read_body(request, limits, declared)
        if not body.strip():
            return []
        require_utf8(body)
        params: Parameters = list(from_json(body))
        _check_count(len(params), limits)
        return params
    if media_type == _MULTIPART:
        boundary = parse_options_header(header)[1].get(b"boundary")
        if not boundary:
            raise BadRequest("malformed multipart body: the Content-Type has no boundary")
        return await _multipart(request, boundary, limits, declared)
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type.decode('latin-1')!r}: use multipart/form-data, "
        "application/x-www-form-urlencoded or application/json"
    )


def media_type_of(header: bytes) -> bytes:
    """The media type of a Content-Type value, as `parse_options_header` finds it (lower case,
    without its options); a plain ASCII value without options (the usual one) in place."""
    if header.isascii() and b";" not in header:
        return header.lower().strip(b" \t")
    return parse_options_header(header)[0]


def _check_count(count: int, limits: Limits) -> None:
    if count > limits.fields:
        raise PayloadTooLarge(f"too many fields: the limit is {limits.fields}")


def _urlencoded(body: bytes, limits: Limits) -> Parameters:
    """`parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=…)`, the same
    pairs, but only the names and values with a `%` or a `+` are unquoted (parse_qsl's own
    per-field work cost a twentieth of a three-field form post)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the urlencoded body is not UTF-8") from None
    if text.count("&") + 1 > limits.fields:  # parse_qsl's own count, empty pieces included
        raise PayloadTooLarge(f"too many fields: the limit is {limits.fields}")
    quoted = "%" in text or "+" in text
    pairs: Parameters = []
    try:
        for piece in text.split("&"):
            if piece:
                name, _, value = piece.partition("=")
                if quoted:
                    if "%" in name or "+" in name:
                        name = _unquote_plus(name)
                    if "%" in value or "+" in value:
                        value = _unquote_plus(value)
                pairs.append((name, value))
    except UnicodeDecodeError:
        raise BadRequest("the urlencoded body has percent-escapes that are not UTF-8") from None
    return pairs


def _unquote_plus(text: str) -> str:
    """`unquote_plus(text, errors="strict")` in half its time (one decode of all the bytes)."""
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")


class _Part:
    __slots__ = ("content_type", "data", "filename", "headers", "more", "name", "size")

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        # A part that comes in one piece (most do) is kept as that piece, never copied again;
        # from a second piece on, they are collected in a bytearray (memory stays the bytes).
        self.data = b""
        self.more: bytearray | None = None
        self.size = 0
        self.name = ""
        self.filename: str | None = None
        self.content_type = "application/octet-stream"

    def add(self, piece: bytes) -> None:
        """Another piece of the part's value."""
        if self.more is not None:
            self.more += piece
        elif self.size:
            self.more = bytearray(self.data)
            self.more += piece
        else:
            self.data = piece
        self.size += len(piece)

    def value(self) -> bytes:
        """The part's whole value."""
        return self.data if self.more is None else bytes(self.more)


class _MultipartCollector:
    """python-multipart callbacks that collect parts and enforce the limits as data arrives."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parts: Parameters = []
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.header_name.lower()] = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        if len(self.parts) >= self.limits.fields:
            raise PayloadTooLarge(f"too many fields: the limit is {self.limits.fields}")
        disposition, options = _disposition(self.part.headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequest("malformed multipart body: a part has no Content-Disposition name")
        self.part.name = _utf8(options[b"name"], "a part name")
        if b"filename" in options:
            self.part.filename = _utf8(options[b"filename"], "a file name")
            content_type = self.part.headers.get(b"content-type", b"").strip()
            if content_type:
                self.part.content_type = _media_type(content_type)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        part.add(data[start:end])
        if part.filename is not None and part.size > self.limits.file_bytes:
            raise PayloadTooLarge(f"file {part.name!r} over the limit of {self.limits.file_bytes} bytes")

    def on_part_end(self) -> None:
        part = self.part
        if part.filename is None:
            self.parts.append((part.name, _utf8(part.value(), f"the value of {part.name!r}")))
        else:
            self.parts.append((part.name, StoredFile(part.value(), part.content_type, part.filename)))


# A part's Content-Disposition, parsed: python-multipart's parser is a third of a small form's
# parsing, and clients repeat the same few values (`form-data; name="firstname"`) request after
# request. Bounded: short values only, and at most `_DISPOSITIONS_KEPT` of them.
_DISPOSITIONS: dict[bytes, tuple[bytes, dict[bytes, bytes]]] = {}
_DISPOSITIONS_KEPT = 1024
_DISPOSITION_BYTES = 256


def _disposition(header: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """`parse_options_header` of a part's Content-Disposition (the answer is shared: read only)."""
    parsed = _DISPOSITIONS.get(header)
    if parsed is None:
        parsed = parse_options_header(header)
        if len(header) <= _DISPOSITION_BYTES:
            if len(_DISPOSITIONS) >= _DISPOSITIONS_KEPT:
                _DISPOSITIONS.clear()
            _DISPOSITIONS[header] = parsed
    return parsed


def _media_type(raw: bytes) -> str:
    # Served back as the Content-Type header: only what a header value can carry as is
    # (printable ASCII; anything else was a 500 when the file was read back).
    if not raw.isascii() or not raw.decode("ascii").isprintable():
        raise BadRequest("malformed multipart body: a part's Content-Type must be printable ASCII")
    return raw.decode("ascii")


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"malformed multipart body: {what} is not UTF-8") from None


async def _multipart(request: Request, boundary: bytes, limits: Limits, declared: bytes | None) -> Parameters:
    collector = _MultipartCollector(limits)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end",
        )
    }
    received = 0
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in _limited_stream(request, limits, declared):
            received += len(chunk)
            parser.write(chunk)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    # finalize() accepts a body cut short; only the state machine knows the end was seen.
    if received and parser.state != MultipartState.END:
        raise BadRequest("malformed multipart body: it ends before the closing boundary")
    return collector.parts
