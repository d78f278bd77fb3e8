"""Small type aliases shared across layers."""

from typing import Any

# A decoded JSON document whose shape is checked elsewhere (msgspec Structs, domain code).
JSONObject = dict[str, Any]

# Milliseconds since the Unix epoch: what Redis PEXPIREAT and sorted-set scores use.
EpochMillis = int
