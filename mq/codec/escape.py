"""Bodies on one text line (protocol.md 3.1): backslash escapes for control and invalid bytes."""

from __future__ import annotations

from mq.errors import bad_request

_SIMPLE_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNESCAPES = {ord("\\"): 0x5C, ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09}


def escape_body(body: bytes) -> str:
    """Render a body on one line; `unescape_body` reverses it exactly."""
    text = body.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_body(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte != 0x5C:
            out.append(byte)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < n else None
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
            i += 2
        elif nxt == ord("x") and i + 4 <= n and all(c in _HEX for c in raw[i + 2 : i + 4]):
            out.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        else:
            raise bad_request("bad escape in body: use \\\\ \\n \\r \\t or \\xHH")
    return bytes(out)
