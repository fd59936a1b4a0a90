"""Consistent hash ring: which member owns a key, so that a member leaving moves only its keys.

Each member is placed at `vnodes` points on a 32-bit circle (murmur3 of "member#i"); a key
belongs to the first point at or after murmur3(key), wrapping around. Removing a member gives
each of its arcs to the next point, which belongs to another member: no other key moves.
Adding one takes about 1/N of the keys, from all the others. Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import mmh3

DEFAULT_VNODES = 512


def _point(text: str) -> int:
    return int(mmh3.hash(text, signed=False))


class HashRing:
    def __init__(self, members: Iterable[str] = (), vnodes: int = DEFAULT_VNODES) -> None:
        if vnodes < 1:
            raise ValueError("vnodes must be at least 1")
        self.vnodes = vnodes
        self._members: set[str] = set()
        self._points: list[int] = []
        self._owners: list[str] = []
        self._shares: dict[str, float] = {}  # worked out when members change, read by metrics
        for member in members:
            self.add(member)

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: str) -> None:
        if member in self._members:
            return
        self._members.add(member)
        self._rebuild()

    def remove(self, member: str) -> None:
        if member in self._members:
            self._members.discard(member)
            self._rebuild()

    def _rebuild(self) -> None:
        # Sorting (point, member) pairs breaks a (rare) point collision by name, so the ring is
        # the same whatever order the members came in.
        pairs = sorted((_point(f"{m}#{i}"), m) for m in self._members for i in range(self.vnodes))
        self._points = [p for p, _ in pairs]
        self._owners = [m for _, m in pairs]
        self._shares = self._measure_shares()

    def owner(self, key: str) -> str | None:
        """The member that owns `key`, or None when the ring is empty."""
        if not self._points:
            return None
        at = bisect.bisect_left(self._points, _point(key))
        return self._owners[at if at < len(self._points) else 0]

    def shares(self) -> dict[str, float]:
        """The fraction of the hash circle each member owns (sums to 1.0)."""
        return dict(self._shares)

    def _measure_shares(self) -> dict[str, float]:
        if not self._points:
            return {}
        span = 1 << 32
        out = dict.fromkeys(self._members, 0.0)
        previous = self._points[-1] - span
        for point, owner in zip(self._points, self._owners, strict=True):
            out[owner] += (point - previous) / span
            previous = point
        return out
