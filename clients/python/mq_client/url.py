"""Broker addresses: `mq://host:port` URLs, `mqs://` for TLS, with optional credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SCHEME = "mq"
TLS_SCHEME = "mqs"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7711
DEFAULT_URL = f"{SCHEME}://{DEFAULT_HOST}:{DEFAULT_PORT}"


@dataclass(frozen=True, slots=True)
class Address:
    """Where a broker listens: a host name or IP (IPv6 without brackets) and a TCP port;
    whether it speaks TLS, and who to authenticate as (`user` and `secret`, both or neither)."""

    host: str
    port: int
    tls: bool = False
    user: str | None = None
    secret: str | None = field(default=None, repr=False)  # never printed

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if (self.user is None) != (self.secret is None):
            raise ValueError("a user needs a secret, and a secret a user")

    def __str__(self) -> str:
        """The URL without the secret: what logs and errors may show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user is not None else ""
        return f"{TLS_SCHEME if self.tls else SCHEME}://{user}{host}:{self.port}"


def shown(url: str) -> str:
    """`url` with its secret (if any) as `***`: what an error about the URL may repeat."""
    _, slashes, after = url.partition("//")
    authority = after
    for end in "/?#":
        authority = authority.partition(end)[0]
    userinfo, at, _ = authority.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (slashes and at and colon):
        return url
    return url.replace(f"//{userinfo}@", f"//{user}:***@", 1)


def parse_url(url: str) -> Address:
    """Parse `mq://[user:secret@]host:port` (`mqs://` for TLS); the host defaults to 127.0.0.1
    and the port to 7711.

    `mq://`, `mq://host` and `mq://:port` are accepted; IPv6 hosts go in brackets
    (`mq://[::1]:7711`). The user and secret are percent-decoded (`%40` for an `@` in a
    secret). Raises ValueError for another scheme, a path, query or fragment, a user without a
    secret, or a bad port.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ValueError(f"bad broker URL {shown(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in (SCHEME, TLS_SCHEME) or not url[len(scheme) + 1 :].startswith("//"):
        raise ValueError(f"unsupported broker URL {shown(url)!r}: expected {SCHEME}://host:port or {TLS_SCHEME}://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"unsupported broker URL {shown(url)!r}: expected {SCHEME}://host:port and nothing more")
    if "@" in parts.netloc and (parts.username is None or parts.password is None):
        raise ValueError(f"broker URL {shown(url)!r} names a user without a secret: mq://user:secret@host:port")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in broker URL {shown(url)!r}: {exc}") from exc
    user = None if parts.username is None else unquote(parts.username)
    secret = None if parts.password is None else unquote(parts.password)
    port = DEFAULT_PORT if port is None else port
    return Address(parts.hostname or DEFAULT_HOST, port, scheme == TLS_SCHEME, user, secret)


def parse_seeds(url: str) -> list[Address]:
    """The brokers of `mq://[user:secret@]h1:p1,h2:p2,...` (a cluster's seed list), each as
    `parse_url` reads it; one address for a plain URL. Raises ValueError as `parse_url` does,
    and for an empty entry."""
    scheme, sep, rest = url.partition("://")
    if not sep or "," not in rest:
        return [parse_url(url)]
    userinfo, at, hosts = rest.rpartition("@")
    prefix = f"{scheme}://{userinfo}{at}"
    entries = hosts.split(",")
    if any(not e for e in entries):
        raise ValueError(f"broker URL {url!r} has an empty entry in its list of brokers")
    return [parse_url(prefix + e) for e in entries]
