"""Text on one line (protocol.md 3.1): backslash escapes for control and invalid bytes.

Bodies are escaped so that `unescape_body` gives them back exactly. Every other free text a
reply line prints (keys, nack errors, dedup ids, dead-letter reasons, holders: strings a client
chose) is escaped the same way, so no client can end another's reply line early or forge one
(`x\\r\\n+OK` in a key). In `name=value` fields such text is also quoted where a space would
make it ambiguous (`quote_field`).
"""

from __future__ import annotations

from mq.errors import bad_request

_SIMPLE_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNESCAPES = {ord("\\"): 0x5C, ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09}


def _breaks_lines(code: int) -> bool:
    """Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: what a
    terminal or a line splitter could take for the end of a line, or not show at all."""
    return code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)


def _hex_escape(ch: str) -> str:
    return "".join(f"\\x{b:02x}" for b in ch.encode())


def escape_text(text: str) -> str:
    """Render text on one line: backslash, control characters and line separators, and
    undecodable bytes (kept by surrogateescape) as escapes; everything else as is."""
    if text.isprintable() and "\\" not in text:  # the common case: nothing to escape
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _breaks_lines(code):
            out.append(_hex_escape(ch))  # its UTF-8 bytes, so unescaping gives the text back
        else:
            out.append(ch)
    return "".join(out)


def escape_body(body: bytes) -> str:
    """Render a body on one line; `unescape_body` reverses it exactly."""
    return escape_text(body.decode("utf-8", errors="surrogateescape"))


def quote_field(text: str) -> str:
    """The value of a `name=value` field: escaped like a body, with `'` written `\\x27`; in
    single quotes when it is empty or holds white space, so it is always one token."""
    escaped = escape_text(text).replace("'", "\\x27")
    if escaped and not any(ch.isspace() for ch in escaped):
        return escaped
    return f"'{escaped}'"


def one_line(text: str) -> str:
    """Human text (an error message) kept on its line: control characters and line separators
    escaped as `\\xHH`. Backslashes stay as written: the broker's messages quote client values
    with repr already."""
    if text.isprintable():
        return text
    return "".join(_hex_escape(ch) if _breaks_lines(ord(ch)) else ch for ch in text)


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
