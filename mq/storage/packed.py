"""What a batch row of the log (rows.py, "Batch rows") holds in its `body`: the ids of its
messages, and for plain publishes their publish times and bodies too. Numbers are 8-byte
little-endian: ids signed integers, times IEEE doubles, so a time reads back exactly as it was
written; the bodies are one msgpack array of bin. Arrays and msgpack do the packing and
unpacking in C, so nothing is handled one message at a time in Python: a restart unpacks a
million publishes in a few hundred calls.

  leases, acks:  id * n
  publishes:     n, id * n, published_at * n, then [body, ...] in msgpack
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Collection, Sequence
from typing import cast

import msgpack

_SWAP = sys.byteorder == "big"
_N = 8  # bytes per number


def _ints(data: bytes | memoryview) -> array[int]:
    numbers = array("q")
    numbers.frombytes(data)  # array("q", data) would take a memoryview's bytes as numbers
    if _SWAP:
        numbers.byteswap()
    return numbers


def _floats(data: bytes | memoryview) -> array[float]:
    numbers = array("d")
    numbers.frombytes(data)
    if _SWAP:
        numbers.byteswap()
    return numbers


def _bytes(numbers: array[int] | array[float]) -> bytes:
    if _SWAP:
        numbers = array(numbers.typecode, numbers)
        numbers.byteswap()
    return numbers.tobytes()


def pack_ids(ids: Sequence[int]) -> bytearray:
    """The body of a batch row of leases or acks. A bytearray: it binds on sqlite3's fast
    path, where bytes do not."""
    return bytearray(_bytes(array("q", ids)))


def pack_publishes(ids: Sequence[int], published_at: Sequence[float],
                   bodies: Sequence[bytes]) -> bytearray:
    """The body of a batch row of plain publishes."""
    head = array("q", [len(ids)])
    head.extend(ids)
    return bytearray(b"".join([_bytes(head), _bytes(array("d", published_at)),
                               msgpack.packb(list(bodies), use_bin_type=True)]))


def ids_of(publishes: bool, body: bytes) -> array[int]:
    """The ids a batch row holds (`publishes`: a row of publishes, else of leases or acks)."""
    if not publishes:
        return _ints(body)
    n = _ints(body[:_N])[0]
    return _ints(memoryview(body)[_N:_N + n * _N])


def unpack_publishes(body: bytes) -> tuple[array[int], array[float], list[bytes]]:
    """A batch row of publishes: their ids, publish times (Unix s) and bodies, in order."""
    view = memoryview(body)
    n = _ints(view[:_N])[0]
    ids = _ints(view[_N:_N + n * _N])
    published_at = _floats(view[_N + n * _N:_N + 2 * n * _N])
    bodies = cast(list[bytes], msgpack.unpackb(view[_N + 2 * n * _N:]))
    return ids, published_at, bodies


def without(publishes: bool, body: bytes, gone: Collection[int]) -> tuple[int, bytearray] | None:
    """A batch row's body once the messages `gone` are taken out, with its new smallest id;
    None when none is left."""
    if not publishes:
        left = [i for i in _ints(body) if i not in gone]
        return (min(left), pack_ids(left)) if left else None
    ids, published_at, bodies = unpack_publishes(body)
    kept = [k for k, i in enumerate(ids) if i not in gone]
    if not kept:
        return None
    return min(ids[k] for k in kept), pack_publishes(
        [ids[k] for k in kept], [published_at[k] for k in kept], [bodies[k] for k in kept])
