"""Secrets are kept as scrypt hashes with a salt of their own, never as the secret itself.

A stored hash reads `scrypt$<n>$<r>$<p>$<salt>$<hash>` (salt and hash in URL-safe base64), so
the cost can be raised later without breaking the hashes already written: each carries its own.
Checking compares in constant time. A check costs ~50 ms of CPU and 16 MiB by design; the
broker runs it off its event loop.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
COST_N = 2**14  # CPU and memory cost: 128 * r * n bytes = 16 MiB
BLOCK_R = 8
PARALLEL_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_MEMORY_BYTES = 64 * 1024 * 1024  # what a stored hash may make one check use


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=size,
                          maxmem=MAX_MEMORY_BYTES)


def hash_secret(secret: str) -> str:
    """The stored form of `secret`, with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, COST_N, BLOCK_R, PARALLEL_P, HASH_BYTES)
    return f"{SCHEME}${COST_N}${BLOCK_R}${PARALLEL_P}${_b64(salt)}${_b64(digest)}"


def check_hash_form(stored: str) -> None:
    """Raise ValueError unless `stored` is a hash this module can check."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("a secret must be stored as scrypt$n$r$p$salt$hash (use `mq user add`)")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = base64.urlsafe_b64decode(parts[4]), base64.urlsafe_b64decode(parts[5])
    except ValueError as e:
        raise ValueError(f"a stored secret is malformed: {e}") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * r * n > MAX_MEMORY_BYTES:
        raise ValueError("a stored secret has scrypt parameters out of bounds")
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        raise ValueError("a stored secret has a salt or hash of the wrong size")


def verify(secret: str, stored: str) -> bool:
    """Whether `secret` hashes to `stored` (checked by `check_hash_form` when it was loaded)."""
    _, n, r, p, salt, digest = stored.split("$")
    expected = base64.urlsafe_b64decode(digest)
    got = _scrypt(secret, base64.urlsafe_b64decode(salt), int(n), int(r), int(p), len(expected))
    return hmac.compare_digest(got, expected)


@functools.cache
def dummy_hash() -> str:
    """What an unknown user name is checked against, so that a refusal takes as long either
    way and does not tell which names exist."""
    return hash_secret(secrets.token_hex(16))
