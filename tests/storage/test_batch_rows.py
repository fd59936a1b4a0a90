"""Batch rows (rows.py, "Batch rows"; SQLite log format 4): the leases of one delivery and the
acks of one batch ack are one row each in an SQLite log, and read back exactly as one row per
message would. Postgres keeps a row per message; the same scenarios run on both stores
(`target`), so the recovered state and HISTORY agree whatever the rows are.
"""

from __future__ import annotations

import asyncio

from mq.core.broker import Broker
from mq.core.events import Acked, Appended, Event, Leased
from mq.core.model import Message
from mq.storage.ledger import Ledger
from mq.storage.packed import ids_of, unpack_publishes
from mq.storage.rows import BATCHED, MAX_RUN_BODY_BYTES, MAX_SPAN, PUBLISHES
from mq.storage.sqlite import (
    RECOVERY_CHUNK_BYTES,
    RECOVERY_CHUNK_ROWS,
    RECOVERY_FIRST_ROWS,
    _rows_within_bytes,
)
from tests.storage.log_files import LogTarget, every_message, new_broker, opened

T0 = 1_800_000_000.0


def deliver(broker: Broker, count: int, holder: str = "h1") -> list[tuple[int, int]]:
    """Lease `count` messages of "q" in one delivery; their receipts."""
    return [(d.msg_id, d.delivery) for d in broker.lease("q", holder, max_count=count)]


def batch_rows(target: LogTarget) -> list[tuple[object, ...]]:
    return target.rows(f"SELECT kind, msg_id FROM log WHERE kind >= {BATCHED} ORDER BY seq")


def test_one_delivery_and_one_batch_ack_are_one_row_each_and_read_back_per_message(
        target: LogTarget) -> None:
    """100 published in one batch, leased in one delivery, 60 of them acked in one batch: in
    SQLite three rows; after a restart the 40 unacked are back with one delivery each, and HISTORY
    of an acked and an unacked message tells their own lives."""
    broker = new_broker()
    for i in range(100):
        broker.publish("q", b"%d" % i)
    receipts = deliver(broker, 100)
    assert broker.ack_many(receipts[:60], "h1") == []
    asyncio.run(target.write_once(broker))

    if target.kind == "sqlite":
        assert batch_rows(target) == [(PUBLISHES, 1), (BATCHED + Event.LEASED, 1),
                                      (BATCHED + Event.ACKED, 1)]
        assert target.rows("SELECT COUNT(*) FROM log") == [(3,)]
    messages = every_message(asyncio.run(target.reopen()))
    assert [(m.id, m.deliveries) for m in messages] == [(i, 1) for i in range(61, 101)]

    async def histories() -> list[list[object]]:
        store = target.store()
        async with opened(store):
            return [[e["event"] for e in await store.history(i)] for i in (1, 60, 61)]

    acked, last_acked, unacked = asyncio.run(histories())
    assert acked == last_acked == ["published", "leased", "acked"]
    assert unacked == ["published", "leased"]


def test_a_message_leased_acked_and_leased_again_in_one_batch_keeps_its_order(
        target: LogTarget) -> None:
    """Only neighbouring changes share a row: a lease, a nack and a second lease of the same
    messages in one write fold back to the second lease's delivery count."""
    broker = new_broker()
    for i in range(10):
        broker.publish("q", b"%d" % i)
    for msg_id, delivery in deliver(broker, 10):
        broker.nack(msg_id, delivery, "h1")
    again = deliver(broker, 10)
    assert [d for _, d in again] == [2] * 10
    broker.ack_many(again[:5], "h1")
    asyncio.run(target.write_once(broker))

    messages = every_message(asyncio.run(target.reopen()))
    assert [(m.id, m.deliveries) for m in messages] == [(i, 2) for i in range(6, 11)]


def test_compaction_takes_finished_ids_out_of_batch_rows_and_deletes_emptied_ones(
        target: LogTarget) -> None:
    """A batch row stays while one of its messages does: compaction rewrites it without the
    compacted ids, and deletes it once none is left; the log ends empty."""
    broker = new_broker()
    for i in range(30):
        broker.publish("q", b"%d" % i)
    receipts = deliver(broker, 30)
    broker.ack_many(receipts[:20], "h1")

    async def scenario() -> None:
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            assert await store.compact(20) == 20
            if target.kind == "sqlite":  # the publish and lease rows keep 21..30; no ack row
                left = await target.rows_now(store, f"SELECT kind, msg_id, body FROM log "
                                                    f"WHERE kind >= {BATCHED} ORDER BY seq")
                assert [(kind, msg_id, list(ids_of(kind == PUBLISHES, body)))
                        for kind, msg_id, body in left] == [
                    (PUBLISHES, 21, list(range(21, 31))),
                    (BATCHED + Event.LEASED, 21, list(range(21, 31)))]
            assert await store.read_bodies([21, 30]) == {21: b"20", 30: b"29"}
            assert [e["event"] for e in await store.history(25)] == ["published", "leased"]
            assert await store.history(5) == []
            broker.ack_many(receipts[20:], "h1")
            await store.write(broker.take_effects().changes)
            assert await store.compact(100) == 10

    asyncio.run(scenario())
    assert target.rows("SELECT COUNT(*) FROM log") == [(0,)]
    assert every_message(asyncio.run(target.reopen())) == []


def test_runs_split_where_the_shared_fields_differ_or_the_ids_spread_too_far() -> None:
    """A run ends at a change of another kind, time, holder or delivery, and before its ids
    would span MAX_SPAN; a run of one is the message's own row."""
    rows = Ledger(batch_rows=True).batch([
        Leased(1, 1, "a", T0), Leased(2, 1, "a", T0),  # one row
        Leased(3, 2, "a", T0),  # another delivery: its own row
        Leased(4, 1, "b", T0), Leased(5, 1, "b", T0),  # another holder
        Acked(1, T0), Acked(2, T0), Acked(4, T0 + 1),  # another time: a single row
        Acked(5, T0 + 1), Acked(5 + MAX_SPAN, T0 + 1)]).rows  # too far apart
    assert [(row[0], row[1]) for row in rows] == [
        (1, BATCHED + Event.LEASED), (3, Event.LEASED), (4, BATCHED + Event.LEASED),
        (1, BATCHED + Event.ACKED), (4, BATCHED + Event.ACKED), (5 + MAX_SPAN, Event.ACKED)]


def test_a_fan_out_copy_reads_its_body_from_a_holder_in_a_batch_row(target: LogTarget) -> None:
    """A topic's first copy can share a batch row with the plain publishes before it; the other
    copies still read its body, and it keeps its publish while they live, though it is acked
    and compacted."""
    broker = new_broker()
    broker.bind("t", "q")
    broker.bind("t", "r")
    broker.publish("q", b"before")
    copies = broker.publish_to_topic("t", b"shared")
    holder, copy = copies["q"], copies["r"]
    receipts = deliver(broker, 2)
    assert [i for i, _ in receipts] == [1, holder]
    broker.ack_many(receipts, "h1")

    async def scenario() -> None:
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            if target.kind == "sqlite":  # the holder's publish shares a row with message 1's
                rows = await target.rows_now(
                    store, f"SELECT body FROM log WHERE kind = {PUBLISHES}")
                assert [list(ids_of(True, body)) for body, in rows] == [[1, holder]]
            assert await store.compact(10) == 2
            assert await store.read_bodies([copy]) == {copy: b"shared"}

    asyncio.run(scenario())
    [left] = every_message(asyncio.run(target.reopen()))
    assert (left.id, left.queue, left.body) == (copy, "r", b"shared")


def test_a_run_of_publishes_is_one_queue_s_plain_ones_and_its_bodies_stay_within_a_bound() -> None:
    """Plain publishes to one queue share a row until their bodies would pass
    MAX_RUN_BODY_BYTES; another queue, or a publish with an option, ends the run."""
    half = b"x" * (MAX_RUN_BODY_BYTES // 2)
    rows = Ledger(batch_rows=True).batch([
        Appended(Message(1, "q", half, None, T0)),
        Appended(Message(2, "q", half, None, T0)),  # one row with 1
        Appended(Message(3, "q", b"y", None, T0)),  # over the bound: a new run
        Appended(Message(4, "r", b"z", None, T0)),  # another queue
        Appended(Message(5, "r", b"z", "k", T0)),  # a key: a row of its own
        Appended(Message(6, "r", b"z", None, T0)),
        Appended(Message(7, "r", b"z", None, T0))]).rows  # one row with 6
    assert [(row[0], row[1]) for row in rows] == [
        (1, PUBLISHES), (3, Event.PUBLISHED), (4, Event.PUBLISHED), (5, Event.PUBLISHED),
        (6, PUBLISHES)]
    assert unpack_publishes(bytes(rows[0][4]))[2] == [half, half]


def test_a_restart_reads_publishes_in_chunks_of_about_recovery_chunk_bytes() -> None:
    """Batch rows of publishes hold up to a MiB each: a chunk of them is sized by its bytes,
    not by a count of rows made for one message each."""
    kib64 = [(1, T0, "q", b"x" * (1 << 16), PUBLISHES)] * RECOVERY_FIRST_ROWS
    assert _rows_within_bytes(kib64, 3) == RECOVERY_CHUNK_BYTES >> 16
    mib = [(1, T0, "q", b"x" * (1 << 20), PUBLISHES)] * RECOVERY_FIRST_ROWS
    assert _rows_within_bytes(mib, 3) == max(RECOVERY_FIRST_ROWS, RECOVERY_CHUNK_BYTES >> 20)
    small = [(1, T0, "q", b"x" * 100, Event.PUBLISHED)] * 1000
    assert _rows_within_bytes(small, 3) == RECOVERY_CHUNK_ROWS
