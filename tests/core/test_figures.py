"""The figures metrics read from the core: counters kept as work happens, sizes and the oldest
ready message's age read without a walk over the messages."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings
from mq.ring import HashRing


def test_nacks_and_redeliveries_are_counted(core: Broker, clock: FakeClock) -> None:
    for i in range(3):
        core.publish("q", b"%d" % i)
    first, second, _ = core.lease("q", "h", max_count=3)
    core.nack(first.msg_id, first.delivery, "h")
    core.nack(second.msg_id, second.delivery, "h", delay_s=10)
    [again] = core.lease("q", "h")  # the first one, back from its nack
    assert again.msg_id == first.msg_id
    q = core.figures()["q"]
    assert (q["nacked"], q["redelivered"], q["published"]) == (2, 1, 3)
    assert (q["ready"], q["delayed"], q["leased"]) == (0, 1, 2)


def test_oldest_ready_age_is_of_the_first_published_ready_message(
        core: Broker, clock: FakeClock) -> None:
    assert core.figures() == {}
    core.publish("q", b"old, low priority")
    clock.advance(5)
    core.publish("q", b"urgent", priority=9)
    clock.advance(2)
    assert core.figures()["q"]["oldest_ready_s"] == pytest.approx(7.0)
    [urgent] = core.lease("q", "h")
    assert urgent.body == b"urgent"
    assert core.figures()["q"]["oldest_ready_s"] == pytest.approx(7.0)
    assert len(core.lease("q", "h")) == 1  # now the old one: none ready
    assert core.figures()["q"]["oldest_ready_s"] == 0.0


def test_group_figures_without_keys_and_leases_of_a_holder(clock: FakeClock) -> None:
    core = Broker(clock, QueueSettings(retention_s=3600, lease_s=30),
                  ring_factory=lambda: HashRing(vnodes=64))
    core.join("q", "g", "a", "ha", prefetch=10)
    core.join("q", "g", "b", "hb", prefetch=10)
    for i in range(4):
        core.publish("q", b"x", key=f"k{i}")
    got = core.lease("q", "ha", max_count=4) + core.lease("q", "hb", max_count=4)
    group = core.group_stats("q", keys=False)
    assert group is not None
    members = group["members"]
    assert set(members) == {"a", "b"} and all("keys" not in m for m in members.values())
    assert sum(m["ring_share"] for m in members.values()) == pytest.approx(1.0, abs=1e-3)
    assert core.leases_of("ha") + core.leases_of("hb") == len(got) == 4
    assert core.leases_of("nobody") == 0


def test_dead_letter_queues_are_those_that_exist(core: Broker) -> None:
    core.publish("a", b"x")
    core.declare("b", dead_letter="parked")
    assert core.dead_letter_queues() == []
    core.publish("parked", b"y")
    core.publish("a.dlq", b"z")
    assert core.dead_letter_queues() == ["a.dlq", "parked"]
