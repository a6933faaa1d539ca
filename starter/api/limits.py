"""How much a request body may hold, per route, and how large and deep its JSON may be (docs/api.md).

Only filing a complaint needs megabytes (its evidence, base64-encoded); the codec carries a history event's
payloads; every other body is a few fields. The JSON limits bound what parsing and validating a body that
fits may cost: Python's parser recurses once per level, and a megabyte of `[],` is a quarter of a million
values for pydantic to visit. They are checked on the raw bytes with a few passes of C-speed byte
operations, before the body is parsed.
"""

from __future__ import annotations

import re

from starter.api.schemas.common import MAX_BODY_BYTES

SMALL_BODY_BYTES = 64 * 1024
"""Every route's limit but those in `BODY_LIMITS`: an order or an action is a few hundred bytes."""

CODEC_BODY_BYTES = 6 * 1024 * 1024
"""A history event's payloads, base64-encoded: Temporal's gRPC messages are at most 4 MiB by default."""

BODY_LIMITS = {"file_complaint": MAX_BODY_BYTES, "decode": CODEC_BODY_BYTES, "encode": CODEC_BODY_BYTES}
"""Routes (by name, their OpenAPI operation id) that take more than `SMALL_BODY_BYTES`."""

MAX_JSON_DEPTH = 16
"""The deepest a body nests: the codec's payloads, the deepest shape the API takes, nest four levels."""

MAX_JSON_VALUES = 50_000
"""Containers and their items: the codec's 1,000 payloads with a few metadata entries each are ~5,000."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRUCTURE = bytes(byte for byte in range(256) if byte not in b"[]{},")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
"""Depth does not depend on which kind of container: objects are counted as arrays."""


def body_limit(route_name: str) -> int:
    return BODY_LIMITS.get(route_name, SMALL_BODY_BYTES)


def json_shape_refusal(body: bytes) -> str | None:
    """Why `body` is too large or too deep a JSON text to parse, or None. A body that is not JSON at all is
    left to the parser to refuse, unless it looks deeper or larger than the limits."""
    escapes = max(body.count(b'"'), body.count(b"\\"))
    if escapes > 4 * MAX_JSON_VALUES:
        return f"holds more than {4 * MAX_JSON_VALUES} quotes or escapes"
    structure = _STRING.sub(b"", body).translate(None, _STRUCTURE)
    if structure.count(b",") + structure.count(b"[") + structure.count(b"{") > MAX_JSON_VALUES:
        return f"holds more than {MAX_JSON_VALUES} values"
    brackets = structure.translate(_ONE_KIND, b",")
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return None
        brackets = brackets.replace(b"[]", b"")  # one level of innermost containers per pass
    if b"[]" in brackets:
        return f"nests deeper than {MAX_JSON_DEPTH} levels"
    return None
