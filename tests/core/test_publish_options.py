"""What a publish's options do, in the core with a fake clock: priorities, delays, TTL,
deduplication, and fan-out to the queues bound to a topic."""

from __future__ import annotations

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Appended
from mq.core.model import Delivery
from tests.core.due import due_at


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def test_higher_priority_first_fifo_within_a_level(core: Broker) -> None:
    for body, priority in [(b"low1", 0), (b"high1", 9), (b"mid", 5), (b"high2", 9), (b"low2", 0)]:
        core.publish("q", body, priority=priority)
    assert bodies(core.lease("q", "h", max_count=10)) == [b"high1", b"high2", b"mid", b"low1",
                                                         b"low2"]


def test_nacked_message_keeps_its_priority_place(core: Broker) -> None:
    core.publish("q", b"low", priority=1)
    core.publish("q", b"high", priority=8)
    [m] = core.lease("q", "h")
    core.nack(m.msg_id, m.delivery, "h")
    assert bodies(core.lease("q", "h", max_count=2)) == [b"high", b"low"]


def test_delayed_publish_is_invisible_until_its_time(core: Broker, clock: FakeClock) -> None:
    core.publish("q", b"later", delay_s=10)
    core.publish("q", b"now")
    assert bodies(core.lease("q", "h", max_count=5)) == [b"now"]
    assert due_at(core) == 1_010.0
    clock.advance(9.9)
    core.tick()
    assert core.lease("q", "h") == []
    clock.advance(0.1)
    core.tick()
    assert "q" in core.take_effects().woken
    assert bodies(core.lease("q", "h")) == [b"later"]


def test_expired_ttl_is_never_delivered(core: Broker, clock: FakeClock) -> None:
    core.publish("q", b"short", ttl_s=5)
    core.publish("q", b"long", ttl_s=50)
    clock.advance(5)
    assert bodies(core.lease("q", "h", max_count=5)) == [b"long"]
    stats = core.stats("q")["q"]
    assert stats["ttl_expired"] == 1 and stats["ready"] == 0


def test_dedup_within_window_returns_first_id(core: Broker, clock: FakeClock) -> None:
    core.declare("q", dedup_window_s=60)
    first = core.publish("q", b"charge card 42", dedup_id="order-42")
    core.take_effects()  # start afresh
    assert core.publish("q", b"charge card 42", dedup_id="order-42") == (first.msg_id, True)
    assert core.take_effects().changes == []  # nothing stored the second time
    clock.advance(61)
    core.tick()
    assert core.publish("q", b"charge card 42", dedup_id="order-42") == (first.msg_id + 1,
                                                                            False)
    assert core.stats("q")["q"]["deduplicated"] == 1


def test_dedup_is_per_queue(core: Broker) -> None:
    assert core.publish("a", b"x", dedup_id="d") == (1, False)
    assert core.publish("b", b"x", dedup_id="d") == (2, False)


def test_fanout_copies_are_independent_and_share_the_body(core: Broker) -> None:
    for q in ("144p", "720p", "captions"):
        core.bind("uploads", q)
    core.take_effects()  # start afresh
    ids = core.publish_to_topic("uploads", b"video-7")
    assert sorted(ids) == ["144p", "720p", "captions"]
    appended = [c for c in core.take_effects().changes if isinstance(c, Appended)]
    holder = appended[0].message.id
    assert [c.body_of for c in appended] == [None, holder, holder]
    assert len({id(c.message.body) for c in appended}) == 1  # one bytes object in memory
    [m720] = core.lease("720p", "h")
    core.ack(m720.msg_id, m720.delivery, "h")
    assert bodies(core.lease("144p", "h")) == [b"video-7"]
    assert core.unbind("uploads", "720p")
    assert sorted(core.publish_to_topic("uploads", b"video-8")) == ["144p", "captions"]
