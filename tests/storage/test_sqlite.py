"""The log against a real SQLite file and a real Postgres database (each test that is not about
one of them runs on both: the `target` fixture), with a reopen: what a restart recovers
(protocol.md 4, 5).

Changes are made by a real Broker on a FakeClock and written with
`store.write(take_effects().changes)`, exactly as the server does; each test then opens the file
with a fresh store and checks the `Recovered` state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Change
from mq.core.model import QueueSettings, State
from mq.storage.base import Recovered, Store
from mq.storage.group_commit import GroupCommit
from mq.storage.sqlite import MAX_ROWS_PER_STATEMENT, SQLiteStore
from tests.storage.log_files import (
    AFTER_ALL,
    EVERY_ROW,
    T0,
    LogTarget,
    every_message,
    lease_one,
    new_broker,
    opened,
    per_message,
    reopen,
    rows,
)

# --- recovery -------------------------------------------------------------------------------


def test_fresh_file_recovers_nothing_and_starts_ids_at_one(target: LogTarget) -> None:
    """A new log is empty: no queues, no messages, next_id 1."""
    recovered = asyncio.run(target.reopen())
    assert recovered.settings == {}
    assert every_message(recovered) == []
    assert recovered.next_id == 1
    assert target.created()


def test_unacked_messages_come_back_ready_with_deliveries_kept(target: LogTarget) -> None:
    """Leases are void after a restart: leased, expired and never-leased messages are READY,
    each with the delivery count it had, and no holder."""
    clock = FakeClock(T0)
    broker = new_broker(clock)
    for body in (b"a", b"b", b"c"):
        broker.publish("q", body)
    lease_one(broker)  # 1: leased at restart, 1 delivery
    lease_one(broker, lease_s=5)  # 2: leased, expires, leased again -> 2 deliveries
    clock.advance(5)
    broker.tick()
    assert lease_one(broker, "h2") == (2, 2)
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    assert [(m.id, m.queue, m.body, m.deliveries) for m in every_message(recovered)] == [
        (1, "q", b"a", 1), (2, "q", b"b", 2), (3, "q", b"c", 0),
    ]
    assert all(m.state is State.READY for m in every_message(recovered))
    assert recovered.next_id == 4

    restarted = new_broker(clock)
    restarted.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
    assert all("holder" not in restarted.explain(m.id) for m in every_message(recovered))
    got = restarted.lease("q", "h3", max_count=3)
    assert [(d.msg_id, d.delivery) for d in got] == [(1, 2), (2, 3), (3, 1)]  # never reused


def test_acked_and_dropped_messages_do_not_come_back(target: LogTarget) -> None:
    """Acked and retention-dropped messages are final: gone after a restart."""
    clock = FakeClock(T0)
    broker = new_broker(clock)
    broker.declare("short", retention_s=10, lease_s=None)
    broker.publish("q", b"acked")
    broker.publish("q", b"kept")
    broker.publish("short", b"dropped")
    broker.ack(*lease_one(broker), "h1")
    clock.advance(10)
    broker.tick()
    assert broker.stats("short")["short"]["dropped"] == 1
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    assert [(m.id, m.body) for m in every_message(recovered)] == [(2, b"kept")]
    assert recovered.next_id == 4


def test_changes_written_in_several_commits_fold_in_order(target: LogTarget) -> None:
    """State is the fold of events across transactions: publish, lease, then ack in later
    writes leaves nothing; a lease in a later write than its publish counts."""

    async def scenario() -> None:
        broker = new_broker()
        store = target.store()
        async with opened(store):
            broker.publish("q", b"a")
            broker.publish("q", b"b")
            await store.write(broker.take_effects().changes)
            one = lease_one(broker)
            lease_one(broker)
            await store.write(broker.take_effects().changes)
            broker.ack(*one, "h1")
            await store.write(broker.take_effects().changes)

    asyncio.run(scenario())
    recovered = asyncio.run(target.reopen())
    assert [(m.id, m.deliveries, m.state) for m in every_message(recovered)] == [
        (2, 1, State.READY)]


def test_running_nack_delay_comes_back_delayed(target: LogTarget) -> None:
    """A nack delay still running at restart is kept, with its ready_at; a restored broker
    hands the message out only once the delay has passed."""
    clock = FakeClock(T0)
    broker = new_broker(clock)
    broker.publish("q", b"later")
    broker.nack(*lease_one(broker), "h1", delay_s=60)
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    [msg] = every_message(recovered)
    assert (msg.state, msg.ready_at, msg.deliveries) == (State.DELAYED, T0 + 60, 1)

    restarted = new_broker(clock)
    restarted.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
    clock.advance(30)
    restarted.tick()
    assert restarted.lease("q", "h2") == []
    clock.advance(30)
    restarted.tick()
    assert lease_one(restarted, "h2") == (1, 2)


def test_nack_without_delay_comes_back_ready_in_its_place(target: LogTarget) -> None:
    """A message given back with a plain nack is READY right after a restart, with its
    deliveries, and still goes out before higher ids (no tick needed)."""
    clock = FakeClock(T0)
    broker = new_broker(clock)
    broker.publish("q", b"nacked")
    broker.publish("q", b"later")
    broker.nack(*lease_one(broker), "h1")
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    assert [(m.id, m.state, m.deliveries) for m in every_message(recovered)] == [
        (1, State.READY, 1), (2, State.READY, 0)]
    restarted = new_broker(clock)
    restarted.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
    assert lease_one(restarted, "h2") == (1, 2)


def test_a_later_lease_ends_an_earlier_nack_delay(target: LogTarget) -> None:
    """Nacked with a delay, delivered again after it: the message recovers READY, not DELAYED."""
    clock = FakeClock(T0)
    broker = new_broker(clock)
    broker.publish("q", b"x")
    broker.nack(*lease_one(broker), "h1", delay_s=5)
    clock.advance(5)
    broker.tick()
    assert lease_one(broker) == (1, 2)
    asyncio.run(target.write_once(broker))

    [msg] = every_message(asyncio.run(target.reopen()))
    assert (msg.state, msg.deliveries) == (State.READY, 2)


def test_declared_settings_survive_and_the_last_declare_wins(target: LogTarget) -> None:
    """Queue settings from Declared are recovered; a re-declare replaces the earlier row."""
    broker = new_broker()
    broker.declare("orders", retention_s=60, lease_s=5)
    broker.declare("orders", retention_s=None, lease_s=9)
    broker.declare("empty", retention_s=7_200, lease_s=None)
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    assert recovered.settings == {
        "orders": QueueSettings(retention_s=60, lease_s=9),
        "empty": QueueSettings(retention_s=7_200, lease_s=30),
    }
    assert every_message(recovered) == []
    restarted = new_broker()
    restarted.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
    assert restarted.queue_names() == ["empty", "orders"]
    restarted.publish("orders", b"x")
    [msg] = restarted.lease("orders", "h1")
    assert restarted.explain(msg.msg_id)["lease_deadline"] == T0 + 9


def test_next_id_continues_after_everything_was_acked_and_compacted(target: LogTarget) -> None:
    """With every row acked and compacted away, the next id is still one past the highest ever
    used: ids (and so receipts) are never reused."""

    async def scenario() -> None:
        broker = new_broker()
        for i in range(3):
            broker.publish("q", b"%d" % i)
        for receipt in [lease_one(broker) for _ in range(3)]:
            broker.ack(*receipt, "h1")
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            assert await store.compact(100) == 3

    asyncio.run(scenario())
    assert target.rows("SELECT COUNT(*) FROM log") == [(0,)]
    recovered = asyncio.run(target.reopen())
    assert every_message(recovered) == []
    assert recovered.next_id == 4
    restarted = new_broker()
    restarted.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
    assert restarted.publish("q", b"new").msg_id == 4


def test_ids_keep_ascending_across_several_restarts(target: LogTarget) -> None:
    """Restore, publish, write, reopen, twice: ids keep going up from where they were."""
    for expected in ([1, 2], [3, 4]):
        recovered = asyncio.run(target.reopen())
        broker = new_broker()
        broker.restore(recovered.settings, recovered.messages, recovered.next_id,
                      plain=recovered.plain)
        assert [broker.publish("q", b"x").msg_id, broker.publish("q", b"y").msg_id] == expected
        asyncio.run(target.write_once(broker))
    assert [m.id for m in every_message(asyncio.run(target.reopen()))] == [1, 2, 3, 4]


def test_a_batch_larger_than_one_statement_is_written_whole(target: LogTarget) -> None:
    """A write of more rows than fit in one INSERT statement (MAX_ROWS_PER_STATEMENT) is still
    recorded completely, in order."""
    n = MAX_ROWS_PER_STATEMENT + 1
    broker = new_broker()
    for i in range(n):
        broker.publish("q", b"%d" % i)
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    assert [m.id for m in every_message(recovered)] == list(range(1, n + 1))
    assert every_message(recovered)[-1].body == b"%d" % (n - 1)
    assert recovered.next_id == n + 1


# --- compaction -----------------------------------------------------------------------------


def test_compact_deletes_finished_messages_in_bounded_chunks(target: LogTarget) -> None:
    """Each compact(limit) deletes at most `limit` finished messages with all their events;
    live messages and their events stay; the backlog shrinks to zero."""

    async def scenario() -> None:
        broker = new_broker()
        for i in range(6):
            broker.publish("q", b"%d" % i)
        for _ in range(5):
            broker.ack(*lease_one(broker), "h1")  # 1..5 acked
        lease_one(broker)  # 6 stays, leased
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            assert store.compaction_backlog == 5
            async def events() -> list[tuple[int, int]]:  # the store has the file open
                return per_message(await target.rows_now(store, EVERY_ROW))

            assert len([e for e in await events() if e[1] != 0]) == 11

            assert await store.compact(2) == 2
            assert store.compaction_backlog == 3
            assert sorted(i for i, kind in await events() if kind == 0) == [3, 4, 5, 6]
            assert sorted({i for i, _ in await events()}) == [3, 4, 5, 6]

            assert await store.compact(2) == 2
            assert await store.compact(2) == 1
            assert store.compaction_backlog == 0
            assert await store.compact(2) == 0

    asyncio.run(scenario())
    assert per_message(target.rows(EVERY_ROW)) == [(6, 0), (6, 1)]
    assert [(m.id, m.deliveries) for m in every_message(asyncio.run(target.reopen()))] == [(6, 1)]


REFUSE_DELETES = {  # a trigger that makes every DELETE of the log fail, as a real fault would
    "sqlite": ["CREATE TRIGGER refuse_delete BEFORE DELETE ON log "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgres": ["CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$",
                 "CREATE TRIGGER refuse_delete BEFORE DELETE ON log FOR EACH STATEMENT "
                 "EXECUTE FUNCTION refuse_delete()"],
}
ALLOW_DELETES = {"sqlite": "DROP TRIGGER refuse_delete",
                 "postgres": "DROP TRIGGER refuse_delete ON log"}


def test_a_chunk_whose_delete_fails_stays_on_the_backlog_and_is_compacted_later(
        target: LogTarget) -> None:
    async def scenario() -> None:
        broker = new_broker()
        for i in range(3):
            broker.publish("q", b"%d" % i)
        for _ in range(3):
            broker.ack(*lease_one(broker), "h1")
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            for sql in REFUSE_DELETES[target.kind]:
                await target.rows_now(store, sql)
            with pytest.raises(Exception, match="refused by the test"):
                await store.compact(2)
            assert store.compaction_backlog == 3
            await target.rows_now(store, ALLOW_DELETES[target.kind])
            assert await store.compact(10) == 3
            assert store.compaction_backlog == 0

    asyncio.run(scenario())
    assert target.rows("SELECT COUNT(*) FROM log") == [(0,)]


def test_a_failed_chunk_keeps_what_ties_a_fan_out_copy_to_its_body_holder(
        target: LogTarget) -> None:
    """The holder of a fan-out body, finished first, keeps its published row for its copy;
    when the copy's chunk fails, the retry still deletes the holder's last rows."""

    async def scenario() -> None:
        broker = new_broker()
        broker.bind("t", "b")
        broker.bind("t", "c")
        broker.publish_to_topic("t", b"shared")  # 1 (in b) holds the body, 2 (in c) points at it
        [held] = broker.lease("b", "h1")
        broker.ack(held.msg_id, held.delivery, "h1")
        store = target.store()
        async with opened(store):
            await store.write(broker.take_effects().changes)
            assert await store.compact(10) == 1  # 1 keeps its published row for 2
            [copy] = broker.lease("c", "h1")
            broker.ack(copy.msg_id, copy.delivery, "h1")
            await store.write(broker.take_effects().changes)
            for sql in REFUSE_DELETES[target.kind]:
                await target.rows_now(store, sql)
            with pytest.raises(Exception, match="refused by the test"):
                await store.compact(10)
            await target.rows_now(store, ALLOW_DELETES[target.kind])
            assert await store.compact(10) == 1

    asyncio.run(scenario())
    assert target.rows("SELECT COUNT(*) FROM log") == [(0,)]


def test_finished_messages_not_yet_compacted_are_compacted_after_reopen(target: LogTarget) -> None:
    """The compaction backlog is rebuilt from the log at open, so a restart does not leak rows."""
    broker = new_broker()
    broker.publish("q", b"a")
    broker.publish("q", b"b")
    broker.ack(*lease_one(broker), "h1")
    asyncio.run(target.write_once(broker))

    async def compact_after_reopen() -> tuple[int, int]:
        store = target.store()
        async with opened(store):
            backlog = store.compaction_backlog
            done = await store.compact(10)
        return backlog, done

    assert asyncio.run(compact_after_reopen()) == (1, 1)
    assert [i for i, kind in per_message(target.rows(EVERY_ROW)) if kind == 0] == [2]
    assert [e for e in per_message(target.rows(EVERY_ROW)) if e[0] == 1] == []


# --- bytes and modes ------------------------------------------------------------------------


def test_bodies_and_keys_round_trip_exactly(target: LogTarget) -> None:
    """Binary bodies (NUL, 0xff, invalid UTF-8, empty, large), keys (None, non-ASCII) and
    publish times come back byte for byte."""
    clock = FakeClock(T0 + 0.123456)
    broker = new_broker(clock)
    sent = [
        (b"\x00", None),
        (b"\xff\xfe\x00\x80 tail\x00", "clé-ü-鍵"),
        (b"", ""),
        (bytes(range(256)) * 1_000, "k" * 256),
    ]
    for body, key in sent:
        broker.publish("q", body, key)
        clock.advance(0.25)
    asyncio.run(target.write_once(broker))

    recovered = asyncio.run(target.reopen())
    got = [(m.body, m.key) for m in every_message(recovered)]
    assert got == sent
    assert all(type(m.body) is bytes for m in every_message(recovered))
    assert [m.published_at for m in every_message(recovered)] == [
        T0 + 0.123456 + 0.25 * i for i in range(4)]


def test_headers_round_trip_through_the_log_and_survive_moves(target: LogTarget) -> None:
    """Headers come back after a reopen with the message, also once it was dead-lettered, and
    a message without headers still comes back without any Extra."""
    broker = new_broker()
    broker.declare("q", max_deliveries=1)
    broker.publish("q", b"a", headers={"traceparent": "00-0af7651916cd43dd-b7ad6b71-01"})
    broker.publish("q", b"b")
    broker.publish("q", b"c", "k", priority=2, ttl_s=60.0, headers={"x-id": "ü"})
    asyncio.run(target.write_once(broker))
    msg_id, delivery = lease_one(broker)
    assert msg_id == 3  # the highest priority first
    broker.nack(msg_id, delivery, "h1", error="no")  # its one delivery: to q.dlq
    asyncio.run(target.write_once(broker))

    messages = {m.id: m for m in every_message(asyncio.run(target.reopen()))}
    assert messages[1].headers == {"traceparent": "00-0af7651916cd43dd-b7ad6b71-01"}
    assert messages[2].headers is None and messages[2].extra is None
    three = messages[3]
    assert (three.queue, three.headers, three.key, three.last_error) == (
        "q.dlq", {"x-id": "ü"}, "k", "no")


@pytest.mark.parametrize(("sync", "synchronous"), [("full", 2), ("normal", 1)])
def test_sync_modes_open_in_wal(db_path: Path, sync: str, synchronous: int) -> None:
    """Both sync modes open the log in WAL mode with the matching `synchronous` setting
    (protocol.md 5), and what they write survives a reopen."""

    async def scenario() -> tuple[str, int]:
        broker = new_broker()
        broker.publish("q", b"x")
        store = SQLiteStore(db_path, sync, clock=AFTER_ALL)
        async with opened(store):
            await store.write(broker.take_effects().changes)
            async with store.db.execute("PRAGMA journal_mode") as cursor:
                (mode,) = await cursor.fetchone()  # type: ignore[misc]
            async with store.db.execute("PRAGMA synchronous") as cursor:
                (level,) = await cursor.fetchone()  # type: ignore[misc]
        return mode, level

    assert asyncio.run(scenario()) == ("wal", synchronous)
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file
    assert [m.body for m in every_message(asyncio.run(reopen(db_path)))] == [b"x"]


def test_unknown_sync_mode_is_refused() -> None:
    """Only "full" and "normal" exist; anything else fails before touching a file."""
    with pytest.raises(ValueError, match="sync"):
        SQLiteStore("unused.db", "off")


def test_store_refuses_use_before_open(target: LogTarget) -> None:
    """Writing to a store that is not open is an error, not a silent no-op."""
    with pytest.raises(RuntimeError, match="not open"):
        asyncio.run(target.store().write([]))


# --- group commit ---------------------------------------------------------------------------


class CountingStore:
    """A real store that also records, in order, each write (its number of changes) and each
    compaction (how many messages it deleted). `after_write` runs once a write is committed,
    to play requests that arrive while the group commit is busy; `idle_after_write` says when
    the run loop went idle after a write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[tuple[str, int]] = []
        self.after_write: Callable[[], None] = lambda: None
        # set when the run loop, after a write, asks for work and there is none left to compact
        self.idle_after_write = asyncio.Event()

    @property
    def writes(self) -> list[int]:
        return [n for op, n in self.calls if op == "write"]

    async def open(self) -> Recovered:
        return await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    @property
    def compaction_backlog(self) -> int:
        return self.store.compaction_backlog

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        return await self.store.history(msg_id)

    async def write(self, changes: Sequence[Change]) -> None:
        self.calls.append(("write", len(changes)))
        await self.store.write(changes)
        self.after_write()

    async def compact(self, limit: int) -> int:
        done = await self.store.compact(limit)
        self.calls.append(("compact", done))
        return done

    def next_compaction_in(self) -> float | None:
        delay = self.store.next_compaction_in()
        if delay is None and self.writes:
            self.idle_after_write.set()
        return delay


def test_group_commit_puts_requests_submitted_together_in_one_transaction(
        target: LogTarget) -> None:
    """Changes of several requests submitted before `run` gets to them share one batch: one
    write, one commit, one on_commit(1); all of them are durable."""
    committed: list[int] = []

    async def scenario() -> CountingStore:
        broker = new_broker()
        store = CountingStore(target.store())
        async with opened(store):
            group = GroupCommit(store, committed.append)
            broker.publish("q", b"a")
            first = group.submit(broker.take_effects().changes)
            broker.publish("q", b"b")
            broker.publish("q", b"c")
            second = group.submit(broker.take_effects().changes)
            lease_one(broker)
            third = group.submit(broker.take_effects().changes)
            assert (first, second, third) == (1, 1, 1)
            group.close()
            await asyncio.wait_for(group.run(), timeout=5)
            assert (group.stats.commits, group.stats.committed_changes) == (1, 4)
            assert group.committed == 1
        return store

    store = asyncio.run(scenario())
    assert store.writes == [4]
    assert committed == [1]
    recovered = asyncio.run(target.reopen())
    assert [(m.body, m.deliveries) for m in every_message(recovered)] == [
        (b"a", 1), (b"b", 0), (b"c", 0)]


def test_group_commit_numbers_batches_in_increasing_order(target: LogTarget) -> None:
    """A submit after a commit goes into the next batch; on_commit sees 1, 2, 3 in order."""
    committed: list[int] = []

    async def scenario() -> GroupCommit:
        broker = new_broker()
        store = target.store()
        async with opened(store):
            commit_seen = asyncio.Event()

            def on_commit(number: int) -> None:
                committed.append(number)
                commit_seen.set()

            group = GroupCommit(store, on_commit)
            runner = asyncio.create_task(group.run())
            for expected in (1, 2, 3):
                broker.publish("q", b"%d" % expected)
                assert group.submit(broker.take_effects().changes) == expected
                assert group.last_submitted == expected
                await asyncio.wait_for(commit_seen.wait(), timeout=5)
                commit_seen.clear()
                assert group.committed == expected
            assert group.submit([]) == 3  # nothing new: no new batch
            group.close()
            await asyncio.wait_for(runner, timeout=5)
        return group

    group = asyncio.run(scenario())
    assert committed == [1, 2, 3]
    assert group.stats.commits == 3
    assert [m.id for m in every_message(asyncio.run(target.reopen()))] == [1, 2, 3]


def test_close_makes_run_return_after_committing_what_was_submitted(target: LogTarget) -> None:
    """`close` while `run` is waiting: what was submitted before is committed, then run returns
    (well before its 0.5 s idle timeout would matter)."""
    committed: list[int] = []

    async def scenario() -> None:
        broker = new_broker()
        store = target.store()
        async with opened(store):
            group = GroupCommit(store, committed.append)
            runner = asyncio.create_task(group.run())
            await asyncio.sleep(0)  # let run start waiting
            assert not runner.done()
            broker.publish("q", b"last words")
            group.submit(broker.take_effects().changes)
            group.close()
            await asyncio.wait_for(runner, timeout=5)
            assert group.committed == 1

    asyncio.run(scenario())
    assert committed == [1]
    assert [m.body for m in every_message(asyncio.run(target.reopen()))] == [b"last words"]


def test_close_with_nothing_submitted_returns_without_a_commit(target: LogTarget) -> None:
    """An idle group commit stops on close and writes no empty transaction."""

    async def scenario() -> CountingStore:
        store = CountingStore(target.store())
        async with opened(store):
            group = GroupCommit(store, lambda number: None)
            runner = asyncio.create_task(group.run())
            await asyncio.sleep(0)
            group.close()
            await asyncio.wait_for(runner, timeout=5)
            assert group.stats.commits == 0
        return store

    assert asyncio.run(scenario()).writes == []


def publish_and_ack(broker: Broker, n: int) -> list[Change]:
    """The changes of `n` messages published, leased and acked: `n` finished messages."""
    for _ in range(n):
        broker.publish("q", b"done")
        broker.ack(*lease_one(broker), "h1")
    return broker.take_effects().changes


def test_group_commit_compacts_every_n_commits_under_steady_load(target: LogTarget) -> None:
    """When requests keep arriving during each write (the loop never idles), a compaction
    chunk still runs after every `compact_every`-th commit, and only then."""
    broker = new_broker()
    batches = [publish_and_ack(broker, 1) for _ in range(4)]  # 3 changes each

    async def scenario() -> CountingStore:
        store = CountingStore(target.store())
        async with opened(store):
            group = GroupCommit(store, lambda number: None, compact_chunk=1, compact_every=2)

            def next_request() -> None:  # arrives while the previous write is in flight
                if batches:
                    group.submit(batches.pop(0))

            store.after_write = next_request
            group.submit(batches.pop(0))
            group.close()  # return once nothing is left to commit
            await asyncio.wait_for(group.run(), timeout=5)
            assert group.stats.commits == 4
            assert group.stats.compacted == 2
        return store

    store = asyncio.run(scenario())
    assert store.calls == [("write", 3), ("write", 3), ("compact", 1),
                           ("write", 3), ("write", 3), ("compact", 1)]


def test_group_commit_compacts_the_backlog_when_idle(target: LogTarget) -> None:
    """With nothing to commit, the run loop works off the compaction backlog in bounded chunks
    of `compact_chunk` messages, without any further commit."""

    async def scenario() -> CountingStore:
        store = CountingStore(target.store())
        async with opened(store):
            group = GroupCommit(store, lambda number: None, compact_chunk=2,
                                compact_every=1_000)
            runner = asyncio.create_task(group.run())
            group.submit(publish_and_ack(new_broker(), 5))
            # Wait for the loop itself to find nothing left (not for the backlog to look
            # empty: that happens while the last chunk is still being deleted).
            await asyncio.wait_for(store.idle_after_write.wait(), timeout=30)
            assert group.stats.compacted == 5
            group.close()
            await asyncio.wait_for(runner, timeout=5)
        return store

    store = asyncio.run(scenario())
    assert store.calls == [("write", 15), ("compact", 2), ("compact", 2), ("compact", 1)]
    assert target.rows("SELECT COUNT(*) FROM log") == [(0,)]


def test_finished_messages_keep_their_history_for_keep_history_s(target: LogTarget) -> None:
    """With keep_history_s, an acked message's rows stay (for HISTORY) until that time passed."""
    now = [T0 + 10]

    async def scenario() -> None:
        broker = new_broker()
        broker.publish("q", b"a")
        broker.ack(*lease_one(broker), "h1")
        store = target.store(keep_history_s=60, clock=lambda: now[0])
        async with opened(store):
            await store.write(broker.take_effects().changes)
            assert await store.compact(100) == 0
            assert store.next_compaction_in() == 50.0
            assert [e["event"] for e in await store.history(1)] == ["published", "leased",
                                                                    "acked"]
            now[0] = T0 + 61
            assert await store.compact(100) == 1
            assert await store.history(1) == []

    asyncio.run(scenario())
