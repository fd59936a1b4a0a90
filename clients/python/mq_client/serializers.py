"""Optional serializers for bodies: bytes stay the default, and nothing is turned into or out of
bytes unless the caller says so.

A publish says so by passing `JSON.encode(value)` (or `MSGPACK.encode(value)`) as its body: the
client sends the bytes and a `content-type` header naming the format, so a consumer in any
language knows what it got. A consumer says so by calling `message.decode(JSON)`, which checks
that header (when there is one) before it decodes. A message is never decoded on its own, and a
body given as bytes or str is sent as it is, with no header added.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

CONTENT_TYPE = "content-type"
"""The header that names a body's format; lower case, as protocol.md's examples spell it."""


class ContentTypeMismatch(ValueError):
    """A message's `content-type` header names another format than the serializer asked to
    decode it."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A body made by a serializer: its bytes and the content type to send with them."""

    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Serializer:
    """Turns values into bodies and back. `content_type` is sent as the `content-type` header."""

    content_type: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]

    def encode(self, value: Any) -> Encoded:
        """`value` as a body to publish, with this serializer's content type."""
        return Encoded(self.dumps(value), self.content_type)

    def decode(self, body: bytes, content_type: str | None = None) -> Any:
        """The value in `body`; `content_type` (the message's header, None: not given) must be
        this serializer's, else `ContentTypeMismatch`."""
        if content_type is not None and content_type != self.content_type:
            raise ContentTypeMismatch(
                f"the message's content-type is {content_type!r}, not {self.content_type!r}: "
                "decode it with the serializer of its type, or read .body")
        return self.loads(body)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _msgpack_dumps(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def _msgpack_loads(body: bytes) -> Any:
    return msgpack.unpackb(body, raw=False)


JSON = Serializer("application/json", _json_dumps, json.loads)
"""Compact UTF-8 JSON; decodes to dicts, lists, str, numbers, bools and None."""
MSGPACK = Serializer("application/msgpack", _msgpack_dumps, _msgpack_loads)
"""msgpack (bin for bytes, str for text); smaller and faster than JSON, and keeps bytes."""
