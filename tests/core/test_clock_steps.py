"""The broker on two clocks (protocol.md section 4): leases follow the monotonic clock, so a step
of the wall clock neither ends a lease early nor stretches it; delays, retention and TTL follow
the wall clock, which is what clients name them in."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Expired
from mq.core.model import QueueSettings
from mq.errors import Code, MQError

T0 = 1_800_000_000.0
LEASE_S = 30.0


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def mono() -> FakeClock:
    return FakeClock(5_000.0)  # another origin: the two must never be compared


@pytest.fixture
def core(wall: FakeClock, mono: FakeClock) -> Broker:
    return Broker(wall, QueueSettings(retention_s=3_600, lease_s=LEASE_S), monotonic=mono)


def expired(core: Broker) -> list[int]:
    return [c.msg_id for c in core.take_effects().changes if isinstance(c, Expired)]


@pytest.mark.parametrize("steps", [(60.0, -60.0), (-60.0, 60.0)])
def test_a_wall_clock_step_neither_ends_a_lease_early_nor_stretches_it(
        core: Broker, wall: FakeClock, mono: FakeClock, steps: tuple[float, float]) -> None:
    """Leases of 30 s; the wall clock jumps by +-60 s, then back. No lease expires before 30
    monotonic seconds, acks and touches still work, and every lease expires at its time."""
    for body in (b"a", b"b", b"c"):
        core.publish("q", body)
    a, b, c = core.lease("q", "h", max_count=3)
    core.take_effects()
    for step in steps:
        wall.advance(step)
        core.tick()
        assert expired(core) == []
        assert core.next_due_in() == LEASE_S
        assert core.explain(a.msg_id)["state"] == "leased"
        assert core.lease("q", "other") == []
    core.ack(a.msg_id, a.delivery, "h")
    wall.advance(steps[0])  # and away again: the lease's remaining time is what counts
    mono.advance(10)
    assert core.touch(b.msg_id, b.delivery, "h", lease_s=LEASE_S) == LEASE_S
    assert core.explain(b.msg_id)["lease_deadline"] == wall.now + LEASE_S  # shown in Unix s
    mono.advance(LEASE_S - 10 - 0.25)
    core.tick()
    assert expired(core) == []
    mono.advance(0.25)  # c's lease is over now: not a moment earlier, not a moment later
    assert core.next_due_in() == 0.0
    core.tick()
    assert expired(core) == [c.msg_id]
    with pytest.raises(MQError) as lost:
        core.ack(c.msg_id, c.delivery, "h")
    assert lost.value.code is Code.LEASE_LOST
    mono.advance(10)
    core.tick()
    assert expired(core) == [b.msg_id]  # the touched lease: 30 s from its touch


def test_delays_retention_and_ttl_follow_the_wall_clock(core: Broker, wall: FakeClock) -> None:
    """They are named in Unix time (not_before, published_at + retention_s, ttl_s): a wall
    step of +60 s makes a 50 s delay end, a 50 s TTL pass and a 50 s retention drop its
    message, though no monotonic time went by."""
    core.declare("short", retention_s=50)
    core.publish("short", b"old")
    core.publish("q", b"later", delay_s=50)
    core.publish("q", b"fleeting", ttl_s=50)
    assert core.next_due_in() == 50
    wall.advance(60)
    assert core.next_due_in() == 0.0
    core.tick()
    assert core.stats("short")["short"]["dropped"] == 1
    assert [d.body for d in core.lease("q", "h", max_count=5)] == [b"later"]
    assert core.stats("q")["q"]["ttl_expired"] == 1
