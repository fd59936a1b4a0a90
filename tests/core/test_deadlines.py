"""The broker's deadlines across many queues, on a fake clock: the next due time is always the
earliest timer of any queue (a lease ending, a delay ending, a message reaching retention),
whatever was cancelled, touched or moved before, and `tick` at that time does exactly what
was due there."""

from __future__ import annotations

from collections import Counter

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Expired, Removed
from mq.core.model import QueueSettings
from tests.core.due import due_at

T0 = 1_000.0
QUEUES = 400


def test_the_next_due_time_is_the_earliest_timer_of_any_queue_until_none_is_left() -> None:
    """400 queues, one message each, retention 10,000 + i s. Per queue i: a lease of 100 + i s
    (some touched longer, to 200 + i s, some shorter, to 20 + i s), a nack delayed 50 + i s,
    an ack (no timer left), or nothing. Then walk the clock from deadline to deadline."""
    clock = FakeClock(T0)
    core = Broker(clock, QueueSettings(retention_s=86_400, lease_s=30))
    due: Counter[tuple[float, str, str]] = Counter()  # (when, queue, what happens) expected
    for i in range(QUEUES):
        q = f"q{i}"
        core.declare(q, retention_s=10_000 + i)
        msg_id = core.publish(q, b"x").msg_id
        kind = i % 4
        if kind != 3:
            core.lease(q, "h", lease_s=100 + i)
        if kind == 0 and i % 8 == 0:  # touched longer
            assert core.touch(msg_id, 1, "h", lease_s=200 + i) == 200 + i
            due[(T0 + 200 + i, q, "lease expired")] += 1
        elif kind == 0 and i % 16 == 4:  # touched shorter
            assert core.touch(msg_id, 1, "h", lease_s=20 + i) == 20 + i
            due[(T0 + 20 + i, q, "lease expired")] += 1
        elif kind == 0:
            due[(T0 + 100 + i, q, "lease expired")] += 1
        elif kind == 1:
            core.nack(msg_id, 1, "h", delay_s=50 + i)
            due[(T0 + 50 + i, q, "ready")] += 1
        elif kind == 2:
            core.ack(msg_id, 1, "h")
        if kind != 2:
            due[(T0 + 10_000 + i, q, "removed")] += 1
    core.take_effects()

    while due:
        when = min(w for w, _, _ in due)
        assert due_at(core) == when
        clock.now = when - 0.001
        core.tick()
        assert core.take_effects().changes == []  # nothing happens early
        clock.now = when
        core.tick()
        effects = core.take_effects()
        happened = Counter((when, c.queue, c.kind.wire) for c in effects.changes
                           if isinstance(c, (Expired, Removed)))
        happened.update((when, q, "ready") for q in effects.woken
                        if (when, q, "ready") in due)
        expected = Counter({k: n for k, n in due.items() if k[0] == when})
        assert happened == expected
        due -= expected
    assert due_at(core) is None
    assert all(s["ready"] + s["leased"] + s["delayed"] == 0 for s in core.stats().values())


def test_a_queue_that_saw_many_messages_still_knows_when_it_is_next_due() -> None:
    """5,000 messages published, leased and acked out of order leave nothing due; the one
    left, and a lease taken last, set the deadline exactly."""
    clock = FakeClock(T0)
    core = Broker(clock, QueueSettings(retention_s=1_000, lease_s=30))
    for _ in range(5_000):
        core.publish("q", b"x")
    leased = core.lease("q", "h", max_count=5_000)
    for d in [*leased[1::2], *leased[::2]]:
        core.ack(d.msg_id, d.delivery, "h")
    assert due_at(core) is None
    clock.advance(10)
    core.publish("q", b"left")
    assert due_at(core) == T0 + 10 + 1_000
    core.lease("q", "h", lease_s=5)
    assert due_at(core) == T0 + 15


def test_a_shorter_retention_is_due_sooner_and_a_longer_one_later() -> None:
    """(The ticks here are not preceded by next_due_in: a tick alone must find what is due.)"""
    clock = FakeClock(T0)
    core = Broker(clock, QueueSettings(retention_s=1_000, lease_s=30))
    core.publish("q", b"a")
    core.declare("q", retention_s=100)
    clock.now = T0 + 100
    core.tick()
    assert core.stats("q")["q"]["dropped"] == 1
    core.publish("q", b"b")
    core.declare("q", retention_s=500)
    assert due_at(core) == T0 + 600
    clock.now = T0 + 599
    core.tick()
    assert core.stats("q")["q"]["dropped"] == 1
    clock.now = T0 + 600
    core.tick()
    assert core.stats("q")["q"]["dropped"] == 2
    assert due_at(core) is None


def test_a_dead_letter_is_retained_by_its_own_age_behind_younger_messages() -> None:
    """A message moved into a dead-letter queue keeps its publish time: it reaches that
    queue's retention first even though younger messages arrived there before it."""
    clock = FakeClock(T0)
    core = Broker(clock, QueueSettings(retention_s=1_000, lease_s=30))
    core.declare("jobs", max_deliveries=1)
    core.declare("jobs.dlq", retention_s=300)
    old = core.publish("jobs", b"old").msg_id
    clock.advance(100)
    young = core.publish("jobs.dlq", b"young").msg_id
    [d] = core.lease("jobs", "h")
    core.nack(d.msg_id, d.delivery, "h")  # max_deliveries=1: into jobs.dlq, behind `young`
    assert core.explain(old)["queue"] == "jobs.dlq"
    clock.now = T0 + 300
    core.tick()  # not preceded by next_due_in: a tick alone must find what is due
    removed = [c.msg_id for c in core.take_effects().changes if isinstance(c, Removed)]
    assert removed == [old]
    assert core.explain(young)["state"] == "ready"
    assert due_at(core) == T0 + 400
