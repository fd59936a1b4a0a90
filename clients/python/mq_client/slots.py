"""A cluster's slots as the client computes them (protocol.md 11): the same function as the
broker's, checked against tests/vectors/slots.json. Pure; needs nothing but Python (mmh3 is
not needed: each name is hashed once and remembered).

slot = murmur3_32(placement key, seed 0) mod 1024; the placement key is the text inside the
first non-empty `{...}` of the name, else the name without a trailing `.dlq`. A message id's
low 10 bits are its slot.
"""

from __future__ import annotations

import functools

SLOTS = 1024
SLOT_MASK = SLOTS - 1
DLQ_SUFFIX = ".dlq"
_C1, _C2, _M32 = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF


def placement_key(name: str) -> str:
    start = name.find("{")
    while start != -1:
        end = name.find("}", start + 1)
        if end == -1:
            break
        if end > start + 1:
            return name[start + 1:end]
        start = name.find("{", end + 1)
    if name.endswith(DLQ_SUFFIX) and len(name) > len(DLQ_SUFFIX):
        return name[: -len(DLQ_SUFFIX)]
    return name


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, unsigned."""
    h = seed
    tail = len(data) & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= (k * _C2) & _M32
        h = ((h << 13) | (h >> 19)) & _M32
        h = (h * 5 + 0xE6546B64) & _M32
    k = 0
    rest = data[tail:]
    for i, byte in enumerate(rest):
        k |= byte << (8 * i)
    if rest:
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= (k * _C2) & _M32
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


@functools.lru_cache(maxsize=65_536)
def slot_of(name: str) -> int:
    """The slot (0..1023) of a queue or topic name."""
    return murmur3_32(placement_key(name).encode("utf-8")) % SLOTS


def slot_of_id(msg_id: int) -> int:
    return msg_id & SLOT_MASK
