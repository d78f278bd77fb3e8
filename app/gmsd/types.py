"""Small type aliases shared across layers."""

from typing import Any

import msgspec

# A decoded JSON document whose shape is checked elsewhere (msgspec Structs, domain code).
JSONObject = dict[str, Any]

# Milliseconds since the Unix epoch: what Redis PEXPIREAT and sorted-set scores use.
EpochMillis = int


class StoredFile(msgspec.Struct, frozen=True):
    """A binary value: exact bytes, with the content type and file name it was uploaded with."""

    data: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None


Value = str | StoredFile
# Request parameters in the order sent; the same name may come twice (the last one wins).
Parameters = list[tuple[str, Value]]
