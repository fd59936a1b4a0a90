"""The values requests are made of, and the checks every command runs in its constructor.

Each check raises BAD_REQUEST with a message that names the field and its bounds (protocol.md
section 7), so a client learns what to change.
"""

from __future__ import annotations

import functools
import math
import re
from typing import NamedTuple

from mq.errors import bad_request
from mq.limits import (
    MAX_HEADER_KEY_BYTES,
    MAX_HEADER_VALUE_BYTES,
    MAX_HEADERS,
    MAX_HEADERS_BYTES,
    MAX_KEY_BYTES,
    MAX_NAME_CHARS,
    MAX_SECRET_BYTES,
)

# `{` and `}` mark a hash tag: the part of a name that places it in a cluster's slot
# (protocol.md 11); a single broker treats them as any other character.
_NAME = re.compile(rf"[A-Za-z0-9_.:{{}}\-]{{1,{MAX_NAME_CHARS}}}")
_NAME_RULE = f"use 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 _ - . : {{ }}"
NAMES_REMEMBERED = 4_096  # names whose check is remembered: at most this many x MAX_NAME_CHARS


def _is_name(name: str) -> bool:
    return len(name) <= MAX_NAME_CHARS and _checked_name(name)


@functools.lru_cache(maxsize=NAMES_REMEMBERED)
def _checked_name(name: str) -> bool:
    # Every request names its queue, and a binary pub checks it twice (its field's kind, then
    # its constructor): a few names come again and again, and a dict lookup is cheaper than
    # the regex. Bounded in count and, through _is_name, in length: any names at all may come.
    return _NAME.fullmatch(name) is not None


def check_queue(name: object) -> str:
    if not isinstance(name, str) or not _is_name(name):
        raise bad_request(f"queue name {name!r} is invalid: {_NAME_RULE}")
    return name


def check_name(field: str, name: object) -> str:
    """Topic, consumer and group names follow the rules of queue names."""
    if not isinstance(name, str) or not _is_name(name):
        raise bad_request(f"{field} {name!r} is invalid: {_NAME_RULE}")
    return name


def check_seconds(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise bad_request(f"{field} must be a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise bad_request(f"{field}={value} is out of bounds: {low:g} to {high:g} seconds")
    return float(value)


def optional_seconds(field: str, value: object, low: float, high: float) -> float | None:
    return None if value is None else check_seconds(field, value, low, high)


def check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{field} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_text(field: str, value: object, max_bytes: int) -> str | None:
    """A text field the log keeps as text (a key, a nack's error, a dedup id): at most
    `max_bytes` of UTF-8 and no NUL, which a Postgres text column cannot hold (one such write
    would fail for every batch merged behind it), so neither store takes it."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode()) > max_bytes:
        raise bad_request(f"{field} must be a string of at most {max_bytes} bytes")
    if "\x00" in value:
        raise bad_request(f"{field} must not hold a NUL character (U+0000)")
    return value


def check_secret(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value.encode()) <= MAX_SECRET_BYTES:
        raise bad_request(f"usage: AUTH <user> <secret>; the secret is 1 to {MAX_SECRET_BYTES} "
                          "bytes of text")
    return value


def check_body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise bad_request(f"body must be bin or str, got {type(value).__name__}")


def check_key(value: object) -> str | None:
    return check_text("key", value, MAX_KEY_BYTES)


_HEADER_KEY = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_HEADER_KEY_BYTES}}}")


def check_header_key(key: object) -> str:
    if not isinstance(key, str) or not _HEADER_KEY.fullmatch(key):
        raise bad_request(f"header name {key!r:.60} is invalid: use 1 to {MAX_HEADER_KEY_BYTES} "
                          "of A-Z a-z 0-9 _ - . :")
    return key


def check_headers(value: object) -> dict[str, str] | None:
    """A message's headers: a map of names to UTF-8 strings, within the limits of protocol.md
    7. None and an empty map are no headers (None), so a message without any carries none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"headers must be a map of str to str, got {type(value).__name__}")
    if not value:
        return None
    if len(value) > MAX_HEADERS:
        raise bad_request(f"a message has at most {MAX_HEADERS} headers, got {len(value)}")
    total = 0
    for key, text in value.items():
        check_header_key(key)
        if not isinstance(text, str):
            raise bad_request(f"header {key!r} must be a str, got {type(text).__name__}")
        size = len(text.encode())
        if size > MAX_HEADER_VALUE_BYTES:
            raise bad_request(f"header {key!r} is {size} bytes: a header value has at most "
                              f"{MAX_HEADER_VALUE_BYTES} bytes")
        total += len(key) + size
    if total > MAX_HEADERS_BYTES:
        raise bad_request(f"headers are {total} bytes (names and values): at most "
                          f"{MAX_HEADERS_BYTES} bytes")
    return value


class Receipt(NamedTuple):
    """Names one delivery: message `msg_id`, delivery number `delivery` (the lease epoch).

    A tuple rather than a dataclass: batch acks parse thousands per request."""

    msg_id: int
    delivery: int

    @classmethod
    def parse(cls, text: object) -> Receipt:
        if isinstance(text, str) and len(text) <= 41 and text.isascii():
            msg_id, dot, delivery = text.partition(".")
            if dot and msg_id.isdigit() and delivery.isdigit():
                return cls(int(msg_id), int(delivery))
        raise bad_request(f"receipt {text!r:.60} is invalid: expected <msg_id>.<delivery> like "
                          "17.2")

    def __str__(self) -> str:
        return f"{self.msg_id}.{self.delivery}"
