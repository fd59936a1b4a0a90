"""Heartbeat bookkeeping on its own: who is dead at a given time."""

from __future__ import annotations

from mq.liveness import Liveness


def test_silent_session_dies_after_its_misses() -> None:
    live = Liveness(misses=3)
    live.track("a", 1.0, now=0)
    live.track("b", 1.0, now=0)
    assert live.next_deadline() == 3.0
    assert live.due(2.9) == []
    live.beat("a", 2.5)
    assert live.due(3.0) == ["b"]
    assert live.due(5.4) == []
    assert live.due(5.5) == ["a"]
    assert len(live) == 0


def test_disconnected_session_gets_its_grace_then_dies() -> None:
    live = Liveness(misses=3)
    live.track("a", 0.1, now=10.0)
    live.disconnected("a", 10.05, grace_s=2.0)
    assert live.due(11.0) == []  # heartbeats cannot come while disconnected: grace counts
    assert live.due(12.06) == ["a"]


def test_reconnect_within_grace_keeps_it() -> None:
    live = Liveness(misses=3)
    live.track("a", 1.0, now=0)
    live.disconnected("a", 1.0, grace_s=2.0)
    live.beat("a", 2.0)  # resumed
    assert live.due(3.5) == []
    assert live.due(5.0) == ["a"]  # now back on heartbeats: 2.0 + 3 x 1.0


def test_forgotten_sessions_never_die() -> None:
    live = Liveness(misses=1)
    live.track("a", 1.0, now=0)
    live.forget("a")
    assert live.due(100) == []
