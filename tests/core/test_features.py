"""Queue features in the core with a fake clock: priorities, delays, TTL, deduplication, dead
letters and redrive, fan-out, purge/delete/peek and EXPLAIN."""

from __future__ import annotations

import pytest

from mq.core import admin
from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Appended, Moved
from mq.core.model import QueueSettings, State
from mq.errors import Code, MQError


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000.0)


@pytest.fixture
def core(clock: FakeClock) -> Broker:
    return Broker(clock, QueueSettings(retention_s=3600, lease_s=30))


def bodies(msgs: list) -> list[bytes]:  # type: ignore[type-arg]
    return [m.body for m in msgs]


def test_higher_priority_first_fifo_within_a_level(core: Broker) -> None:
    for body, priority in [(b"low1", 0), (b"high1", 9), (b"mid", 5), (b"high2", 9), (b"low2", 0)]:
        core.publish("q", body, priority=priority)
    assert bodies(core.lease("q", "h", max_count=10)) == [b"high1", b"high2", b"mid", b"low1",
                                                         b"low2"]


def test_nacked_message_keeps_its_priority_place(core: Broker) -> None:
    core.publish("q", b"low", priority=1)
    core.publish("q", b"high", priority=8)
    [m] = core.lease("q", "h")
    core.nack(m.id, m.deliveries, "h")
    assert bodies(core.lease("q", "h", max_count=2)) == [b"high", b"low"]


def test_delayed_publish_is_invisible_until_its_time(core: Broker, clock: FakeClock) -> None:
    core.publish("q", b"later", delay_s=10)
    core.publish("q", b"now")
    assert bodies(core.lease("q", "h", max_count=5)) == [b"now"]
    assert core.next_deadline() == 1_010.0
    clock.advance(9.9)
    core.tick()
    assert core.lease("q", "h") == []
    clock.advance(0.1)
    core.tick()
    assert "q" in core.take_woken()
    assert bodies(core.lease("q", "h")) == [b"later"]


def test_expired_ttl_is_never_delivered(core: Broker, clock: FakeClock) -> None:
    core.publish("q", b"short", ttl_s=5)
    core.publish("q", b"long", ttl_s=50)
    clock.advance(5)
    assert bodies(core.lease("q", "h", max_count=5)) == [b"long"]
    stats = admin.stats(core, "q")["q"]
    assert stats["ttl_expired"] == 1 and stats["ready"] == 0


def test_dedup_within_window_returns_first_id(core: Broker, clock: FakeClock) -> None:
    admin.declare(core, "q", dedup_window_s=60)
    first = core.publish("q", b"charge card 42", dedup_id="order-42")
    core.take_changes()
    assert core.publish("q", b"charge card 42", dedup_id="order-42") == first
    assert core.take_changes() == []  # nothing stored the second time
    clock.advance(61)
    core.tick()
    assert core.publish("q", b"charge card 42", dedup_id="order-42") != first
    assert admin.stats(core, "q")["q"]["deduplicated"] == 1


def test_dedup_is_per_queue(core: Broker) -> None:
    assert core.publish("a", b"x", dedup_id="d") != core.publish("b", b"x", dedup_id="d")


def test_max_deliveries_moves_to_dead_letter_with_history(core: Broker, clock: FakeClock) -> None:
    admin.declare(core, "jobs", max_deliveries=2)
    msg_id = core.publish("jobs", b"bad input")
    [m] = core.lease("jobs", "h")
    core.nack(m.id, m.deliveries, "h", error="ValueError: bad input")
    [m] = core.lease("jobs", "h", lease_s=1)
    clock.advance(1)
    core.tick()  # second delivery expires: max reached
    assert m.queue == "jobs.dlq" and m.state is State.READY
    assert m.dead is not None and "max_deliveries=2" in m.dead.reason
    [peeked] = admin.peek(core, "jobs.dlq", 5)
    assert peeked["msg_id"] == msg_id and peeked["deliveries"] == 2
    assert peeked["last_error"] == "ValueError: bad input" and peeked["dead_from"] == "jobs"
    assert admin.stats(core, "jobs")["jobs"]["dead_lettered"] == 1


def test_redrive_moves_back_and_counts_deliveries_afresh(core: Broker) -> None:
    admin.declare(core, "jobs", max_deliveries=1, dead_letter="graveyard")
    core.publish("jobs", b"a")
    core.publish("jobs", b"b")
    for m in core.lease("jobs", "h", max_count=2):
        core.nack(m.id, m.deliveries, "h")
    assert admin.stats(core, "graveyard")["graveyard"]["ready"] == 2
    assert admin.redrive(core, "graveyard", 1) == 1
    [back] = core.lease("jobs", "h")
    assert back.body == b"a" and back.deliveries == 2 and back.dead is None
    changes = core.take_changes()
    assert any(isinstance(c, Moved) and c.redrive for c in changes)
    core.nack(back.id, back.deliveries, "h")  # one more try used up: dead again
    assert back.queue == "graveyard"


def test_fanout_copies_are_independent_and_share_the_body(core: Broker) -> None:
    for q in ("144p", "720p", "captions"):
        admin.bind(core, "uploads", q)
    core.take_changes()
    ids = core.publish_to_topic("uploads", b"video-7")
    assert sorted(ids) == ["144p", "720p", "captions"]
    appended = [c for c in core.take_changes() if isinstance(c, Appended)]
    holder = appended[0].message.id
    assert [c.body_of for c in appended] == [None, holder, holder]
    assert len({id(c.message.body) for c in appended}) == 1  # one bytes object in memory
    [m720] = core.lease("720p", "h")
    core.ack(m720.id, m720.deliveries, "h")
    assert bodies(core.lease("144p", "h")) == [b"video-7"]
    assert admin.unbind(core, "uploads", "720p")
    assert sorted(core.publish_to_topic("uploads", b"video-8")) == ["144p", "captions"]


def test_purge_delete_and_peek(core: Broker) -> None:
    for i in range(5):
        core.publish("q", b"%d" % i)
    core.lease("q", "h")
    assert [m["body"] for m in admin.peek(core, "q", 2)] == [b"1", b"2"]
    assert admin.stats(core, "q")["q"]["leased"] == 1  # peek leased nothing
    assert admin.purge(core, "q") == 5
    assert admin.stats(core, "q")["q"]["ready"] == 0
    core.publish("q", b"x")
    assert admin.delete(core, "q") == 1
    assert "q" not in core.queue_names()
    with pytest.raises(MQError) as e:
        admin.delete(core, "q")
    assert e.value.code is Code.NOT_FOUND


def test_explain_says_why(core: Broker, clock: FakeClock) -> None:
    delayed = core.publish("q", b"d", delay_s=30)
    ready = core.publish("q", b"r")
    assert "delayed" in admin.explain(core, delayed)["why"]
    assert admin.explain(core, ready)["why"].startswith("ready: 0 messages ahead")
    [m] = core.lease("q", "worker-1")
    assert "leased by worker-1" in admin.explain(core, m.id)["why"]
    core.ack(m.id, m.deliveries, "worker-1")
    assert admin.explain(core, m.id)["state"] == "gone"


def test_declare_rejects_its_own_dead_letter(core: Broker) -> None:
    with pytest.raises(MQError):
        admin.declare(core, "q", dead_letter="q")
