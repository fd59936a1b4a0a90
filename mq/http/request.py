"""HTTP/1.1 request heads, sans-IO: bytes in, a `Request` or an `HttpError` out.

Only what the side port needs: GET and HEAD of a path with a query, no bodies. The caller
bounds the head's size before it gets here (the reader's limit); this bounds the header count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

METHODS = ("GET", "HEAD")
MAX_QUERY_FIELDS = 16
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/1\.[01]")


class HttpError(Exception):
    """A request answered with `status` and `message` (plain text for people), then closed."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise HttpError(405, f"method {self.method} is not served here; use GET",
                            (("Allow", ", ".join(METHODS)),))
        if not self.path.startswith("/"):
            raise HttpError(400, "the request target must be a path starting with /")


def parse_head(head: bytes, max_headers: int) -> Request:
    """Parse a request line and headers (`head` ends with the empty line, CRLF or LF)."""
    text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise HttpError(400, "empty request")
    method, target = _request_line(lines[0])
    if len(lines) - 1 > max_headers:
        raise HttpError(431, f"more than {max_headers} headers")
    headers = dict(_header(line) for line in lines[1:])
    if headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers:
        raise HttpError(413, "this port takes no request bodies")
    path, _, query_text = target.partition("?")
    try:
        query = dict(parse_qsl(query_text, keep_blank_values=True,
                               max_num_fields=MAX_QUERY_FIELDS))
    except ValueError:
        raise HttpError(400, f"more than {MAX_QUERY_FIELDS} query fields") from None
    return Request(method, path, query, headers)


def _request_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if (len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]
            or not parts[2].startswith("HTTP/")):
        raise HttpError(400, "the request line must be METHOD PATH HTTP/1.1")
    if not _VERSION.fullmatch(parts[2]):
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served")
    if any(ord(c) < 0x21 or ord(c) > 0x7e for c in parts[1]):
        raise HttpError(400, "the request target holds characters that must be escaped")
    return parts[0], parts[1]


def _header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.fullmatch(name):
        raise HttpError(400, f"malformed header line {line[:40]!r}")
    return name.lower(), value.strip(" \t")
