"""Broker addresses: `mq://host:port` URLs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEME = "mq"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7711
DEFAULT_URL = f"{SCHEME}://{DEFAULT_HOST}:{DEFAULT_PORT}"


@dataclass(frozen=True, slots=True)
class Address:
    """Where a broker listens: a host name or IP (IPv6 without brackets) and a TCP port."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1..65535, got {self.port}")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{SCHEME}://{host}:{self.port}"


def parse_url(url: str) -> Address:
    """Parse `mq://host:port`; the host defaults to 127.0.0.1 and the port to 7711.

    `mq://`, `mq://host` and `mq://:port` are accepted; IPv6 hosts go in brackets
    (`mq://[::1]:7711`). Raises ValueError for another scheme, a path, query, fragment or
    user info, or a bad port.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ValueError(f"bad broker URL {url!r}: {exc}") from exc
    if parts.scheme.lower() != SCHEME or not url[len(SCHEME) + 1 :].startswith("//"):
        raise ValueError(f"unsupported broker URL {url!r}: expected {SCHEME}://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"unsupported broker URL {url!r}: expected {SCHEME}://host:port and nothing more")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in broker URL {url!r}: {exc}") from exc
    return Address(parts.hostname or DEFAULT_HOST, DEFAULT_PORT if port is None else port)
