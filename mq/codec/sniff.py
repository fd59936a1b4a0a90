"""Which mode a connection speaks, from its first byte (protocol.md section 1)."""

from __future__ import annotations

from enum import Enum


class Mode(Enum):
    BINARY = "binary"
    TEXT = "text"


_TEXT_CONTROL = frozenset(b"\t\n\r")


def sniff_mode(first_byte: int) -> Mode:
    """Text for printable ASCII or TAB/LF/CR; binary otherwise.

    A valid frame's length is below 64 MiB, so its first byte is 0x00-0x03: never text.
    """
    if 0x20 <= first_byte <= 0x7E or first_byte in _TEXT_CONTROL:
        return Mode.TEXT
    return Mode.BINARY
