"""The consistent hash ring on its own: what moves when members come and go, and balance."""

from __future__ import annotations

from collections import Counter

import pytest

from mq.ring import DEFAULT_VNODES, HashRing

KEYS = [f"store-{i}" for i in range(100_000)]
MEMBERS = [f"worker-{i}" for i in range(10)]


def owners(ring: HashRing) -> dict[str, str | None]:
    return {k: ring.owner(k) for k in KEYS}


def test_removing_a_member_moves_exactly_its_keys() -> None:
    ring = HashRing(MEMBERS)
    before = owners(ring)
    ring.remove("worker-3")
    after = owners(ring)
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == "worker-3"}
    assert all(after[k] != "worker-3" for k in KEYS)
    assert 0.07 < len(moved) / len(KEYS) < 0.13


def test_adding_a_member_moves_about_one_in_eleven() -> None:
    ring = HashRing(MEMBERS)
    before = owners(ring)
    ring.add("worker-10")
    after = owners(ring)
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(after[k] == "worker-10" for k in moved)  # keys only move to the newcomer
    assert abs(len(moved) / len(KEYS) - 1 / 11) < 0.02


@pytest.mark.parametrize("prefix", ["worker-", "c", "pizza-shop-", "consumer#"])
def test_most_loaded_member_within_ten_percent_of_mean(prefix: str) -> None:
    ring = HashRing([f"{prefix}{i}" for i in range(10)])
    counts = Counter(ring.owner(k) for k in KEYS)
    assert len(counts) == 10
    assert max(counts.values()) <= 1.10 * len(KEYS) / 10
    assert ring.vnodes == DEFAULT_VNODES


def test_order_of_joining_does_not_matter() -> None:
    a, b = HashRing(MEMBERS), HashRing(reversed(MEMBERS))
    assert all(a.owner(k) == b.owner(k) for k in KEYS[:5000])


def test_empty_ring_and_shares() -> None:
    ring = HashRing()
    assert ring.owner("x") is None and ring.shares() == {}
    ring.add("only")
    assert ring.owner("x") == "only"
    assert ring.shares() == pytest.approx({"only": 1.0})
    ring = HashRing(MEMBERS)
    shares = ring.shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    counts = Counter(ring.owner(k) for k in KEYS)
    for member, share in shares.items():  # the arc share predicts the key share
        assert abs(counts[member] / len(KEYS) - share) < 0.01
