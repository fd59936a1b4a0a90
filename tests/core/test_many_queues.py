"""Many queues, on a fake clock: asking about a queue does not create it (only SUB, DECLARE, PUB
and the other ops that name a queue to use it do), and a holder that goes away is found in the
queues it holds leases in or is a group member of, whatever else the broker holds."""

from __future__ import annotations

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Left, Released
from mq.core.model import QueueSettings
from mq.ring import HashRing

QUEUES = 10_000


def test_get_peek_explain_and_stats_of_unknown_queues_create_nothing(core: Broker) -> None:
    for i in range(QUEUES):
        assert core.lease(f"nothing{i}", "h", max_count=10) == []
        assert core.peek(f"nothing{i}", 10) == []
        assert core.stats(f"nothing{i}") == {}
    assert core.explain(12345)["state"] == "gone"
    assert core.ready_count("nothing0") == core.held_count("nothing0", "h") == 0
    assert core.queue_names() == []
    assert core.take_effects().changes == []
    assert core.next_due_in() is None


def test_ops_that_use_a_queue_create_it(core: Broker) -> None:
    core.publish("published", b"x")
    core.declare("declared")
    core.wake("subscribed")  # a SUB
    core.bind("topic", "bound")
    assert core.queue_names() == ["bound", "declared", "published", "subscribed"]


def test_a_holder_that_goes_is_released_from_each_queue_it_holds_among_many(
        clock: FakeClock) -> None:
    """10,000 queues with a message each; one holder leases from 3 of them, and its leases
    move (a connection becoming a session) and go back when it goes, counted right."""
    core = Broker(clock, QueueSettings(retention_s=3_600, lease_s=30),
                  ring_factory=lambda: HashRing(vnodes=8))
    for i in range(QUEUES):
        core.publish(f"q{i}", b"x")
    for name in ("q7", "q4242", "q9999"):
        assert len(core.lease(name, "conn-1")) == 1
    assert core.transfer_holder("conn-1", "session-1") == 3
    assert core.transfer_holder("conn-1", "session-1") == 0
    core.join("q5", "g", "worker", "session-1", prefetch=10)  # a member, holding nothing there
    core.take_effects()

    assert core.release_holder("session-1", died=True) == (3, 0)
    effects = core.take_effects()
    assert sorted((c.queue, c.holder) for c in effects.changes if isinstance(c, Released)) == [
        ("q4242", "session-1"), ("q7", "session-1"), ("q9999", "session-1")]
    assert effects.woken == {"q4242", "q5", "q7", "q9999"}  # q5: its group lost a member
    assert core.group_stats("q5") is None
    assert core.release_holder("session-1") == (0, 0)
    assert [d.msg_id for d in core.lease("q7", "conn-2")] == [8]
    assert core.release_holder("conn-2", died=False) == (1, 0)
    assert [(c.msg_id, c.queue) for c in core.take_effects().changes
            if isinstance(c, Left)] == [(8, "q7")]
    assert core.ready_count("q7") == 1
