"""The queue core driven by hand: a FakeClock, no sleeps, no event loop (protocol.md sections 4, 6).

Time moves only through `clock.advance`; due work (lease expiry, delays ending, retention) is
applied only by `tick()`, except that a lease whose deadline has passed can no longer be used
even before the tick that puts its message back.
"""

from __future__ import annotations

import pytest

from mq.core.broker import RETENTION_BATCH, Broker
from mq.core.clock import FakeClock
from mq.core.events import Acked, Appended, Declared, Expired, Leased, Nacked, Removed
from mq.core.model import Delivery, Message, Published, QueueSettings, State
from mq.errors import Code, MQError
from tests.core.due import due_at

T0 = 1_800_000_000.0
RETENTION_S = 1_000.0
LEASE_S = 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    return Broker(clock, QueueSettings(retention_s=RETENTION_S, lease_s=LEASE_S))


def publish_n(broker: Broker, n: int, queue: str = "q") -> list[int]:
    return [broker.publish(queue, f"m{i}".encode()).msg_id for i in range(n)]


def lease_one(broker: Broker, holder: str = "h1", queue: str = "q",
              lease_s: float | None = None) -> tuple[int, int]:
    """Lease one message and return its receipt as (msg_id, delivery)."""
    [leased] = broker.lease(queue, holder, lease_s)
    return leased.msg_id, leased.delivery


def state_of(broker: Broker, msg_id: int) -> str:
    return str(broker.explain(msg_id)["state"])


def lease_deadline(broker: Broker, msg_id: int) -> float:
    return float(broker.explain(msg_id)["lease_deadline"])


def code_of(excinfo: pytest.ExceptionInfo[MQError]) -> Code:
    return excinfo.value.code


# --- leasing order and visibility ------------------------------------------------------------


def test_publish_returns_ascending_ids_and_lease_is_fifo_by_id(broker: Broker) -> None:
    """Ids ascend from 1; each lease takes the ready message with the lowest id."""
    assert publish_n(broker, 3) == [1, 2, 3]
    leased = [broker.lease("q", "h1")[0].msg_id for _ in range(3)]
    assert leased == [1, 2, 3]
    assert broker.lease("q", "h1") == []


def test_lease_max_count_returns_a_batch_in_id_order(broker: Broker) -> None:
    """`max_count` leases up to that many at once, lowest ids first, fewer when fewer are ready."""
    publish_n(broker, 5)
    first = broker.lease("q", "h1", max_count=3)
    assert [d.msg_id for d in first] == [1, 2, 3]
    assert all(d.delivery == 1 and state_of(broker, d.msg_id) == "leased" for d in first)
    rest = broker.lease("q", "h1", max_count=3)
    assert [d.msg_id for d in rest] == [4, 5]
    assert broker.lease("q", "h1", max_count=3) == []


def test_first_lease_is_delivery_one_and_names_the_receipt(broker: Broker) -> None:
    """A delivery carries what its receipt `<msg_id>.<delivery>` is made of, the first
    delivery counting 1, and the message's fields."""
    broker.publish("q", b"body", key="k", priority=2)
    assert broker.lease("q", "h1") == [Delivery(1, 1, "q", b"body", "k", T0, 2)]


def test_lease_hides_the_message_from_other_holders(broker: Broker) -> None:
    """A leased message is not handed to anyone else while its lease runs."""
    publish_n(broker, 1)
    assert lease_one(broker, "h1") == (1, 1)
    assert broker.lease("q", "h2") == []
    assert broker.lease("q", "h1") == []


def test_queues_are_independent(broker: Broker) -> None:
    """A lease on one queue never returns another queue's messages."""
    broker.publish("a", b"x")
    assert broker.lease("b", "h1") == []
    assert [d.queue for d in broker.lease("a", "h1")] == ["a"]


# --- lease expiry and touch ------------------------------------------------------------------


def test_expired_lease_is_ready_again_with_a_new_delivery_number(
        broker: Broker, clock: FakeClock) -> None:
    """After the deadline and a tick, the message is ready; its next lease counts one more."""
    publish_n(broker, 1)
    assert lease_one(broker, "h1") == (1, 1)
    clock.advance(LEASE_S)
    broker.tick()
    assert broker.stats("q")["q"]["expired"] == 1
    [msg] = broker.lease("q", "h2")
    assert (msg.msg_id, msg.delivery) == (1, 2)  # receipt 1.2


def test_lease_is_kept_until_its_deadline(broker: Broker, clock: FakeClock) -> None:
    """Just before the deadline a tick changes nothing: the lease holds and ack works."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    clock.advance(LEASE_S - 0.5)
    broker.tick()
    assert broker.lease("q", "h2") == []
    broker.ack(*receipt, "h1")
    assert broker.stats("q")["q"]["acked"] == 1


def test_explicit_lease_s_overrides_the_queue_default(broker: Broker, clock: FakeClock) -> None:
    """`lease_s` given to lease sets this lease's length instead of the queue's."""
    publish_n(broker, 1)
    [msg] = broker.lease("q", "h1", lease_s=5)
    assert lease_deadline(broker, msg.msg_id) == T0 + 5
    clock.advance(5)
    broker.tick()
    assert lease_one(broker, "h2") == (1, 2)


def test_a_shorter_lease_after_a_longer_one_expires_first(broker: Broker, clock: FakeClock) -> None:
    """Leases end in deadline order whatever order they were made in: a 5 s lease made after
    a 30 s one ends 25 s before it, and the next due time says so."""
    publish_n(broker, 3)
    first = lease_one(broker, lease_s=30)
    second = lease_one(broker, lease_s=5)
    third = lease_one(broker, lease_s=30)
    assert broker.next_due_in() == pytest.approx(5)
    clock.advance(5)
    broker.tick()
    assert lease_one(broker, "h2") == (second[0], 2)
    broker.ack(*first, "h1")
    clock.advance(25)
    broker.tick()
    assert lease_one(broker, "h3") == (third[0], 2)
    assert broker.stats("q")["q"]["expired"] == 2


def test_touch_extends_the_deadline(broker: Broker, clock: FakeClock) -> None:
    """Without touch the lease would expire at T0+30; a touch at T0+20 moves it to T0+50."""
    publish_n(broker, 2)
    touched = lease_one(broker, "h1")
    untouched = lease_one(broker, "h1")
    clock.advance(20)
    assert broker.touch(*touched, "h1") == LEASE_S
    clock.advance(LEASE_S - 20)  # the original deadline
    broker.tick()
    stats = broker.stats("q")["q"]
    assert (stats["leased"], stats["ready"], stats["expired"]) == (1, 1, 1)
    assert lease_one(broker, "h2") == (untouched[0], 2)  # only the untouched one came back
    broker.ack(*touched, "h1")  # still held
    assert broker.stats("q")["q"]["acked"] == 1


def test_touch_with_lease_s_grants_that_length_from_now(
        broker: Broker, clock: FakeClock) -> None:
    """`touch(lease_s=...)` returns the granted length; the deadline becomes now + lease_s."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    clock.advance(10)
    assert broker.touch(*receipt, "h1", lease_s=100) == 100
    clock.advance(99.5)
    broker.tick()
    assert broker.stats("q")["q"]["leased"] == 1
    clock.advance(0.5)
    broker.tick()
    assert broker.stats("q")["q"]["leased"] == 0
    assert broker.stats("q")["q"]["expired"] == 1


def test_touch_after_the_deadline_is_lease_lost(broker: Broker, clock: FakeClock) -> None:
    """A touch cannot revive a lease whose deadline has passed, tick or not."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    clock.advance(LEASE_S)
    with pytest.raises(MQError) as excinfo:
        broker.touch(*receipt, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST


# --- ack ------------------------------------------------------------------------------------


def test_ack_removes_the_message(broker: Broker, clock: FakeClock) -> None:
    """An acked message is gone: never leased again, not even after its lease would expire."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.ack(*receipt, "h1")
    clock.advance(LEASE_S * 2)
    broker.tick()
    assert broker.lease("q", "h1") == []
    stats = broker.stats("q")["q"]
    assert (stats["ready"], stats["leased"], stats["acked"], stats["expired"]) == (0, 0, 1, 0)


def test_ack_twice_is_lease_lost(broker: Broker) -> None:
    """The second ack of the same receipt finds no message."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.ack(*receipt, "h1")
    with pytest.raises(MQError) as excinfo:
        broker.ack(*receipt, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST
    assert not excinfo.value.fatal


def test_ack_of_a_stale_receipt_is_lease_lost(broker: Broker, clock: FakeClock) -> None:
    """Once 1.1 expired and went out again as 1.2, `ack 1.1` fails and 1.2 is untouched."""
    publish_n(broker, 1)
    old = lease_one(broker, "h1")
    clock.advance(LEASE_S)
    broker.tick()
    new = lease_one(broker, "h2")
    assert (old, new) == ((1, 1), (1, 2))
    for holder in ("h1", "h2"):
        with pytest.raises(MQError) as excinfo:
            broker.ack(*old, holder)
        assert code_of(excinfo) is Code.LEASE_LOST
    assert broker.stats("q")["q"]["leased"] == 1
    broker.ack(*new, "h2")
    assert broker.stats("q")["q"]["acked"] == 1


def test_ack_after_the_deadline_before_tick_is_lease_lost(
        broker: Broker, clock: FakeClock) -> None:
    """The deadline is enforced at ack time, not only when a tick notices it."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    clock.advance(LEASE_S)
    with pytest.raises(MQError) as excinfo:
        broker.ack(*receipt, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST
    broker.tick()
    assert lease_one(broker, "h2") == (1, 2)  # the failed ack did not remove it


def test_ack_by_another_holder_is_not_your_lease(broker: Broker) -> None:
    """A live lease can be acked, nacked or touched only by its holder."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    for op in (broker.ack, broker.nack, broker.touch):
        with pytest.raises(MQError) as excinfo:
            op(*receipt, "h2")
        assert code_of(excinfo) is Code.NOT_YOUR_LEASE
    broker.ack(*receipt, "h1")
    assert broker.stats("q")["q"]["acked"] == 1


def test_ack_of_unknown_message_is_lease_lost(broker: Broker) -> None:
    """A receipt naming a message that never existed is LEASE_LOST, not a crash."""
    with pytest.raises(MQError) as excinfo:
        broker.ack(42, 1, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST


def test_ack_many_acks_each_held_receipt_at_one_time_and_names_the_others(
        broker: Broker, clock: FakeClock) -> None:
    """A batch ack is the acks of its receipts, logged at one time; a receipt that cannot be
    acked is named by its place in the batch, and the others are acked all the same."""
    publish_n(broker, 3)
    leased = [(d.msg_id, d.delivery) for d in broker.lease("q", "h1", max_count=3)]
    broker.take_effects()
    clock.advance(1)
    refused = broker.ack_many([leased[0], (leased[1][0], 9), leased[2]], "h1")
    assert [(i, e.code) for i, e in refused] == [(1, Code.LEASE_LOST)]
    assert broker.take_effects().changes == [Acked(1, T0 + 1, "q"), Acked(3, T0 + 1, "q")]
    assert broker.stats("q")["q"]["acked"] == 2


# --- nack -----------------------------------------------------------------------------------


def test_nack_requeues_at_once_keeping_its_place_by_id(broker: Broker) -> None:
    """A nacked message is ready at once and comes before higher ids still waiting."""
    publish_n(broker, 3)
    first, second = broker.lease("q", "h1", max_count=2)
    receipt = (first.msg_id, first.delivery)
    broker.nack(*receipt, "h1")
    assert lease_one(broker, "h2") == (1, 2)
    assert lease_one(broker, "h2") == (3, 1)
    assert state_of(broker, second.msg_id) == "leased"


def test_ack_after_nack_is_lease_lost(broker: Broker) -> None:
    """A receipt given back with nack no longer holds the message."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.nack(*receipt, "h1")
    with pytest.raises(MQError) as excinfo:
        broker.ack(*receipt, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST


def test_nack_with_delay_is_delayed_until_the_delay_passes(
        broker: Broker, clock: FakeClock) -> None:
    """`nack(delay_s)` makes it DELAYED and invisible; a tick at the delay's end makes it ready."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.nack(*receipt, "h1", delay_s=10)
    explained = broker.explain(receipt[0])
    assert (explained["state"], explained["ready_at"]) == ("delayed", T0 + 10)
    stats = broker.stats("q")["q"]
    assert (stats["ready"], stats["delayed"], stats["leased"]) == (0, 1, 0)
    clock.advance(9.5)
    broker.tick()
    assert broker.lease("q", "h2") == []
    clock.advance(0.5)
    broker.tick()
    assert broker.stats("q")["q"]["delayed"] == 0
    assert lease_one(broker, "h2") == (1, 2)


def test_delayed_message_does_not_expire_as_a_lease(broker: Broker, clock: FakeClock) -> None:
    """The lease deadline of a nacked delivery is void: no Expired, not counted as expired."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.nack(*receipt, "h1", delay_s=LEASE_S * 2)
    broker.take_effects()  # start afresh
    clock.advance(LEASE_S)
    broker.tick()
    assert broker.take_effects().changes == []
    assert broker.stats("q")["q"]["delayed"] == 1
    assert broker.stats("q")["q"]["expired"] == 0


# --- retention ------------------------------------------------------------------------------


def test_retention_drops_ready_delayed_and_leased_messages(
        broker: Broker, clock: FakeClock) -> None:
    """Messages older than retention_s go whatever their state, counted as dropped."""
    publish_n(broker, 4)  # 1 delayed, 2 leased, 3 and 4 ready
    delayed = lease_one(broker, "h1")
    leased = lease_one(broker, "h1", lease_s=RETENTION_S * 2)
    broker.nack(*delayed, "h1", delay_s=RETENTION_S * 2)
    assert state_of(broker, delayed[0]) == "delayed"
    clock.advance(RETENTION_S - 0.5)
    broker.tick()
    assert broker.stats("q")["q"]["dropped"] == 0
    clock.advance(0.5)
    broker.tick()
    stats = broker.stats("q")["q"]
    assert (stats["ready"], stats["delayed"], stats["leased"]) == (0, 0, 0)
    assert stats["dropped"] == 4
    with pytest.raises(MQError) as excinfo:
        broker.ack(*leased, "h1")
    assert code_of(excinfo) is Code.LEASE_LOST


def test_retention_drops_only_messages_past_their_age(broker: Broker, clock: FakeClock) -> None:
    """Each message is judged by its own publish time."""
    broker.publish("q", b"old")
    clock.advance(RETENTION_S / 2)
    broker.publish("q", b"young")
    clock.advance(RETENTION_S / 2)
    broker.tick()
    [msg] = broker.lease("q", "h1")
    assert msg.body == b"young"
    assert broker.stats("q")["q"]["dropped"] == 1


def test_retention_is_bounded_per_tick(broker: Broker, clock: FakeClock) -> None:
    """One tick drops at most RETENTION_BATCH messages per queue; the next tick continues."""
    publish_n(broker, RETENTION_BATCH + 1)
    clock.advance(RETENTION_S)
    broker.tick()
    assert broker.stats("q")["q"]["dropped"] == RETENTION_BATCH
    due = due_at(broker)
    assert due is not None and due <= clock()  # the rest is due at once
    broker.tick()
    assert broker.stats("q")["q"]["dropped"] == RETENTION_BATCH + 1


def test_retention_uses_the_queue_setting(broker: Broker, clock: FakeClock) -> None:
    """A declared retention_s applies to that queue only."""
    broker.declare("short", retention_s=10, lease_s=None)
    broker.publish("short", b"a")
    broker.publish("long", b"b")
    clock.advance(10)
    broker.tick()
    stats = broker.stats()
    assert stats["short"]["dropped"] == 1
    assert stats["long"]["dropped"] == 0
    assert stats["long"]["ready"] == 1


# --- declare and stats ----------------------------------------------------------------------


def test_declare_changes_settings_and_lease_uses_its_lease_s(
        broker: Broker, clock: FakeClock) -> None:
    """Declared lease_s becomes the default lease; a None field keeps the current value."""
    settings = broker.declare("q", retention_s=None, lease_s=5)
    assert settings == QueueSettings(retention_s=RETENTION_S, lease_s=5)
    publish_n(broker, 1)
    [msg] = broker.lease("q", "h1")
    assert lease_deadline(broker, msg.msg_id) == T0 + 5
    assert broker.declare("q", retention_s=50, lease_s=None) == QueueSettings(50, 5)
    stats = broker.stats("q")["q"]
    assert (stats["retention_s"], stats["lease_s"]) == (50, 5)
    clock.advance(5)
    broker.tick()
    assert broker.stats("q")["q"]["expired"] == 1


def test_touch_without_lease_s_uses_the_declared_default(
        broker: Broker, clock: FakeClock) -> None:
    """`touch` with no lease_s grants the queue's declared lease_s."""
    broker.declare("q", retention_s=None, lease_s=7)
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    assert broker.touch(*receipt, "h1") == 7


def test_new_queue_gets_the_defaults(broker: Broker) -> None:
    """A queue created on first use has the broker's default settings and zero counts."""
    broker.publish("fresh", b"x")
    assert broker.queue_names() == ["fresh"]
    stats = broker.stats("fresh")["fresh"]
    assert (stats["retention_s"], stats["lease_s"]) == (RETENTION_S, LEASE_S)
    assert broker.stats("missing") == {}


def test_stats_counts_every_field(broker: Broker, clock: FakeClock) -> None:
    """ready, delayed, leased, published, acked, expired, dropped and oldest_ready_s add up."""
    broker.declare("q", retention_s=100, lease_s=None)
    publish_n(broker, 2)  # 1 and 2 will be dropped by retention
    clock.advance(60)
    publish_n(broker, 6)  # 3..8
    broker.lease("q", "h1", lease_s=500, max_count=2)  # 1, 2 stay leased until dropped
    acked = lease_one(broker, "h1")  # 3
    broker.ack(*acked, "h1")
    expiring = lease_one(broker, "h1", lease_s=1)  # 4
    delayed = lease_one(broker, "h1")  # 5
    broker.nack(*delayed, "h1", delay_s=500)
    lease_one(broker, "h1", lease_s=500)  # 6 stays leased
    clock.advance(40)  # T0+100: 1 and 2 reach retention, 4's lease expired
    broker.tick()
    assert expiring[0] == 4
    assert broker.stats("q")["q"] == {
        "ready": 3,  # 4, 7, 8
        "delayed": 1,  # 5
        "leased": 1,  # 6
        "published": 8,
        "acked": 1,
        "expired": 1,
        "ttl_expired": 0,
        "dropped": 2,
        "released": 0,
        "poisoned": 0,
        "dead_lettered": 0,
        "deduplicated": 0,
        "oldest_ready_s": 40.0,  # 4 was published at T0+60
        "retention_s": 100,
        "lease_s": LEASE_S,
        "max_deliveries": 0,
        "dead_letter": "q.dlq",
        "dedup_window_s": 300.0,
    }


def test_oldest_ready_s_is_zero_without_ready_messages(broker: Broker, clock: FakeClock) -> None:
    """oldest_ready_s ignores leased messages and is 0 when nothing is ready."""
    publish_n(broker, 2)
    clock.advance(12.5)
    assert broker.stats("q")["q"]["oldest_ready_s"] == 12.5
    lease_one(broker, "h1")
    clock.advance(1)
    assert broker.stats("q")["q"]["oldest_ready_s"] == 13.5
    lease_one(broker, "h1")
    assert broker.stats("q")["q"]["oldest_ready_s"] == 0.0


def test_ready_and_held_counts(broker: Broker, clock: FakeClock) -> None:
    """What a consumer may still get and what a holder holds, per queue; an unknown queue
    counts 0 and is not created by asking."""
    publish_n(broker, 3)
    broker.publish("q", b"later", delay_s=10)
    broker.lease("q", "h1", max_count=2)
    assert broker.ready_count("q") == 1  # leased and delayed ones are not ready
    assert (broker.held_count("q", "h1"), broker.held_count("q", "h2")) == (2, 0)
    assert broker.ready_count("nowhere") == broker.held_count("nowhere", "h1") == 0
    assert broker.queue_names() == ["q"]
    clock.advance(10)
    broker.tick()
    assert broker.ready_count("q") == 2


# --- deadlines ------------------------------------------------------------------------------


def test_nothing_is_due_when_there_is_nothing_when_nothing_is_due(broker: Broker) -> None:
    """A broker without messages has nothing to wake for."""
    assert due_at(broker) is None
    broker.declare("q", retention_s=None, lease_s=None)
    assert due_at(broker) is None


def test_the_next_due_time_is_the_earliest_of_retention_leases_and_delays(
        broker: Broker, clock: FakeClock) -> None:
    """Retention of the oldest message, then a lease deadline, then a delay end, whichever first."""
    broker.publish("q", b"a")
    assert due_at(broker) == T0 + RETENTION_S
    broker.publish("q", b"b")
    a = lease_one(broker, "h1", lease_s=60)
    assert due_at(broker) == T0 + 60
    b = lease_one(broker, "h1", lease_s=500)
    broker.nack(*b, "h1", delay_s=20)
    assert due_at(broker) == T0 + 20
    clock.advance(20)
    broker.tick()
    assert due_at(broker) == T0 + 60
    broker.declare("other", retention_s=50, lease_s=None)
    broker.publish("other", b"c")  # published at T0+20, retained until T0+70
    clock.advance(10)
    assert due_at(broker) == T0 + 60
    broker.touch(*a, "h1", lease_s=900)
    clock.advance(30)  # T0+60: the old deadline passes; the touched lease holds
    broker.tick()
    assert due_at(broker) == T0 + 70
    assert broker.stats("q")["q"]["leased"] == 1


# --- changes and wake-ups -------------------------------------------------------------------


def test_effects_report_each_change_once_in_order(broker: Broker, clock: FakeClock) -> None:
    """Every state change is reported once, in the order it happened, and then cleared."""
    broker.declare("q", retention_s=100, lease_s=None)
    broker.publish("q", b"a", key="k")  # 1
    broker.publish("q", b"b")  # 2
    one = lease_one(broker, "h1")
    broker.ack(*one, "h1")
    two = lease_one(broker, "h1", lease_s=10)
    broker.nack(*two, "h1", delay_s=5)
    clock.advance(5)
    broker.tick()
    lease_one(broker, "h2", lease_s=10)
    clock.advance(10)  # T0+15
    broker.tick()
    clock.advance(85)  # T0+100
    broker.tick()
    changes = broker.take_effects().changes
    assert [type(c) for c in changes] == [
        Declared, Appended, Appended, Leased, Acked, Leased, Nacked, Leased, Expired, Removed,
    ]
    declared, app1, app2, leased1, acked, leased2, nacked, leased3, expired, dropped = changes
    assert declared == Declared("q", QueueSettings(100, LEASE_S))
    assert isinstance(app1, Appended) and isinstance(app2, Appended)
    assert (app1.message.id, app1.message.body, app1.message.key) == (1, b"a", "k")
    assert app2.message.id == 2
    assert leased1 == Leased(1, 1, "h1", T0, "q")
    assert acked == Acked(1, T0, "q")
    assert leased2 == Leased(2, 1, "h1", T0, "q")
    assert nacked == Nacked(2, T0, T0 + 5, None, "q")
    assert leased3 == Leased(2, 2, "h2", T0 + 5, "q")
    assert expired == Expired(2, T0 + 15, "q")
    assert dropped == Removed(2, T0 + 100, "retention", "q")
    assert broker.take_effects().changes == []


def test_touch_is_not_a_change(broker: Broker) -> None:
    """A touch only moves an in-memory deadline (leases are void after restart): nothing to log."""
    publish_n(broker, 1)
    receipt = lease_one(broker, "h1")
    broker.take_effects()  # start afresh
    broker.touch(*receipt, "h1")
    assert broker.take_effects().changes == []


def test_effects_list_queues_that_gained_ready_messages_as_woken(
        broker: Broker, clock: FakeClock) -> None:
    """Publish, nack, lease expiry and a delay ending wake the queue (it gained ready
    messages), and so do ack and a delayed nack (its holder's credit grew); leasing does not.
    A subscription's `wake` wakes its queue, creating it."""
    broker.publish("a", b"x")
    broker.publish("b", b"y")
    assert broker.take_effects().woken == {"a", "b"}
    assert broker.take_effects().woken == set()
    ra = lease_one(broker, "h1", queue="a")
    rb = lease_one(broker, "h1", queue="b", lease_s=10)
    assert broker.take_effects().woken == set()
    broker.nack(*ra, "h1")
    assert broker.take_effects().woken == {"a"}
    ra = lease_one(broker, "h1", queue="a")
    broker.nack(*ra, "h1", delay_s=20)
    assert broker.take_effects().woken == {"a"}
    clock.advance(10)
    broker.tick()  # b's lease expires
    assert broker.take_effects().woken == {"b"}
    clock.advance(10)
    broker.tick()  # a's delay ends
    assert broker.take_effects().woken == {"a"}
    rb = lease_one(broker, "h1", queue="b")
    broker.ack(*rb, "h1")
    assert broker.take_effects().woken == {"b"}
    broker.wake("new")
    assert broker.take_effects().woken == {"new"}
    assert broker.queue_names() == ["a", "b", "new"]


# --- restore --------------------------------------------------------------------------------


def test_restore_makes_messages_available_with_deliveries_kept(
        broker: Broker, clock: FakeClock) -> None:
    """Restored READY messages lease in id order with their delivery counts going on; DELAYED
    ones wait for their ready_at; settings apply; new ids start at next_id."""
    delayed = Message(3, "q", b"c", None, T0 - 10, deliveries=1, state=State.DELAYED,
                      ready_at=T0 + 5)
    messages = [
        Message(1, "q", b"a", "k", T0 - 30, deliveries=2),
        Message(2, "q", b"b", None, T0 - 20),
        delayed,
    ]
    broker.restore({"q": QueueSettings(retention_s=500, lease_s=8)}, messages, next_id=10)
    assert broker.take_effects().woken == {"q"}
    stats = broker.stats("q")["q"]
    assert (stats["ready"], stats["delayed"], stats["leased"]) == (2, 1, 0)
    assert (stats["retention_s"], stats["lease_s"]) == (500, 8)
    assert stats["oldest_ready_s"] == 30.0
    first = broker.lease("q", "h1", max_count=5)
    assert [(d.msg_id, d.delivery, lease_deadline(broker, d.msg_id)) for d in first] == [
        (1, 3, T0 + 8), (2, 1, T0 + 8)]  # receipts 1.3 and 2.1
    clock.advance(5)
    broker.tick()
    assert lease_one(broker, "h1") == (3, 2)
    assert broker.publish("q", b"d") == Published(10, False)
    last = broker.take_effects().changes[-1]
    assert isinstance(last, Appended) and (last.message.id, last.message.body) == (10, b"d")


def test_restore_never_moves_next_id_backwards(broker: Broker) -> None:
    """An id already handed out by this broker is not reused when restore says lower."""
    publish_n(broker, 3)
    broker.restore({}, [], next_id=2)
    assert broker.publish("q", b"x").msg_id == 4
