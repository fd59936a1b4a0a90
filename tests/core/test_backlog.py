"""Plain ready messages wait in a queue's compact backlog (core/backlog.py), not as full messages:
the queue behaves exactly as if they were full ones, in every operation that sees them."""

from __future__ import annotations

import pytest

from mq.core.backlog import COMPACT_AFTER
from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Removed
from mq.core.model import QueueSettings, State
from mq.errors import Code, MQError
from mq.ring import HashRing


def lease_ids(core: Broker, n: int, holder: str = "h") -> list[int]:
    return [d.msg_id for d in core.lease("q", holder, max_count=n)]


def test_plain_messages_are_kept_without_message_objects(core: Broker) -> None:
    for i in range(100):
        core.publish("q", b"%d" % i)
    assert core._messages == {}  # the broker's table holds only full messages
    assert core.stats("q")["q"]["ready"] == 100


def test_plain_and_optioned_messages_lease_in_priority_then_id_order(core: Broker) -> None:
    core.publish("q", b"1")
    core.publish("q", b"2", priority=2)
    core.publish("q", b"3")
    core.publish("q", b"4", key="k")
    core.publish("q", b"5")
    assert lease_ids(core, 10) == [2, 1, 3, 4, 5]


def test_a_long_backlog_is_leased_in_order_and_leaves_nothing_behind(core: Broker) -> None:
    n = 3 * COMPACT_AFTER
    for i in range(n):
        core.publish("q", b"%d" % i)
    got: list[int] = []
    while batch := core.lease("q", "h", max_count=1_000):
        assert [d.body for d in batch] == [b"%d" % (d.msg_id - 1) for d in batch]
        for d in batch:
            core.ack(d.msg_id, d.delivery, "h")
        got += [d.msg_id for d in batch]
    assert got == list(range(1, n + 1))
    q = core._queues["q"]
    assert len(q.backlog) == 0 and len(q.backlog._ids) < COMPACT_AFTER and core._messages == {}


def test_peek_and_explain_show_backlog_messages_without_leasing_them(core: Broker) -> None:
    for body in (b"a", b"b", b"c"):
        core.publish("q", body)
    assert [m["body"] for m in core.peek("q", 2)] == [b"a", b"b"]
    assert core.explain(3)["state"] == "ready"
    assert "2 messages ahead" in core.explain(3)["why"]
    assert [d.body for d in core.lease("q", "h", max_count=5)] == [b"a", b"b", b"c"]


def test_a_receipt_for_a_queued_plain_message_is_refused_as_for_any(core: Broker) -> None:
    core.publish("q", b"a")
    with pytest.raises(MQError) as refused:
        core.ack(1, 1, "h")
    assert refused.value.code is Code.LEASE_LOST and "stale" in refused.value.message


def test_retention_drops_backlog_messages_oldest_first(core: Broker, clock: FakeClock) -> None:
    core.declare("q", retention_s=10.0)
    core.publish("q", b"old")
    clock.advance(5)
    core.publish("q", b"new")
    core.publish("q", b"keyed", key="k")
    core.take_effects()
    clock.advance(6)
    core.tick()
    removed = [c for c in core.take_effects().changes if isinstance(c, Removed)]
    assert [(c.msg_id, c.reason) for c in removed] == [(1, "retention")]
    assert core.stats("q")["q"]["oldest_ready_s"] == 6.0
    assert lease_ids(core, 5) == [2, 3]


def test_purge_removes_backlog_messages_one_change_each(core: Broker) -> None:
    for _ in range(3):
        core.publish("q", b"x")
    core.take_effects()
    assert core.purge("q") == 3
    assert [c.msg_id for c in core.take_effects().changes if isinstance(c, Removed)] == [1, 2, 3]
    assert core.lease("q", "h") == []


def test_a_group_takes_over_a_backlog_and_later_publishes(clock: FakeClock) -> None:
    core = Broker(clock, QueueSettings(retention_s=3600, lease_s=30), ring_factory=HashRing)
    core.publish("q", b"before")
    core.join("q", "g", "c1", "h1", prefetch=10)
    core.publish("q", b"after")
    assert [d.body for d in core.lease("q", "h1", max_count=10)] == [b"before", b"after"]
    assert all(m.state is State.LEASED for m in core._messages.values())


def test_beyond_the_body_budget_a_lease_stops_and_names_the_bodies_to_read(
        clock: FakeClock) -> None:
    core = Broker(clock, QueueSettings(retention_s=3600, lease_s=30), max_body_memory_bytes=4)
    for body in (b"ab", b"cd", b"ef", b"gh"):
        core.publish("q", body)
    assert core.body_memory() == {"bodies_in_memory": 2, "body_bytes_in_memory": 4,
                                  "bodies_in_log_only": 2, "max_body_memory_bytes": 4}
    assert [d.body for d in core.lease("q", "h", max_count=4)] == [b"ab", b"cd"]
    assert core.wants_bodies("q") and core.take_wanted() == {"q": [3, 4]}
    assert core.lease("q", "h", max_count=4) == []  # still in the log only
    core.take_effects()
    core.fill_bodies("q", {3: b"ef", 4: b"gh", 99: b"gone"})
    assert "q" in core.take_effects().woken
    assert [d.body for d in core.lease("q", "h", max_count=4)] == [b"ef", b"gh"]
    assert core.body_memory()["bodies_in_log_only"] == 0
