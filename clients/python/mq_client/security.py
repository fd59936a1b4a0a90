"""TLS and credentials as both clients use them: which SSL context a URL asks for, and who
to authenticate as.

TLS is on for `mqs://` URLs or when an `ssl_context` is given; the default context verifies the
broker's certificate and host name against the system's CAs, or against `ca_file` (the CA that
signed a private broker's certificate). Credentials given as arguments win over the URL's.
"""

from __future__ import annotations

import ssl

from mq_client.url import Address


def client_context(address: Address, ssl_context: ssl.SSLContext | None, ca_file: str | None) -> ssl.SSLContext | None:
    """The context to connect to `address` with; None for a plain connection."""
    if ssl_context is not None:
        if ca_file is not None:
            raise ValueError("give ssl_context or ca_file, not both: load the CA into the context")
        return ssl_context
    if not address.tls:
        if ca_file is not None:
            raise ValueError(f"ca_file is for TLS: use mqs:// instead of {address}")
        return None
    return ssl.create_default_context(cafile=ca_file)


def credentials(address: Address, user: str | None, secret: str | None) -> tuple[str, str] | None:
    """(user, secret) to authenticate with, or None; the arguments, else the URL's."""
    if (user is None) != (secret is None):
        raise ValueError("give user and secret together")
    if user is not None and secret is not None:
        return user, secret
    if address.user is not None and address.secret is not None:
        return address.user, address.secret
    return None
