"""The clustered Postgres store against a real server (tests/pg.py): two brokers share one
database, each commit is fenced by its slots' epochs, and a slot taken over is folded from the
log with what was leased held back."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mq.cluster.slots import SlotIds, slot_of
from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings
from mq.storage.base import Fenced, StoreUnavailable
from mq.storage.pg_cluster import ClusteredPostgresStore, SlotLost
from tests.pg import query
from tests.storage.log_files import T0, every_message, opened

SLOT = slot_of("orders")
SETTINGS = QueueSettings(3600.0, 30.0)


def clustered_core(clock: FakeClock) -> Broker:
    return Broker(clock, SETTINGS, ids=SlotIds())


def test_a_broker_fenced_out_of_a_slot_commits_nothing_more_for_it(pg_url: str) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        old, new = ClusteredPostgresStore(pg_url, "b1"), ClusteredPostgresStore(pg_url, "b2")
        async with opened(old), opened(new):
            await old.take(SLOT, 5)
            core = clustered_core(clock)
            core.publish("orders", b"before")
            await old.write(core.take_effects().changes)
            await new.take(SLOT, 9)  # the map moved the slot: from here on, b1 is fenced
            core.publish("orders", b"after")
            with pytest.raises(Fenced) as fenced:
                await old.write(core.take_effects().changes)
            assert fenced.value.lost == {SLOT} and SLOT not in old.epochs
            with pytest.raises(SlotLost):
                await old.take(SLOT, 7)  # a stale map cannot take it back
            bodies = query(pg_url, "SELECT body FROM mq.log WHERE body IS NOT NULL")
            assert bodies == [(b"before",)]

    asyncio.run(scenario())


def test_a_batch_with_a_lost_slot_is_refused_whole_and_its_retry_writes_the_rest(
        pg_url: str) -> None:
    async def scenario() -> None:
        other = slot_of("emails")
        assert other != SLOT
        b1, b2 = ClusteredPostgresStore(pg_url, "b1"), ClusteredPostgresStore(pg_url, "b2")
        async with opened(b1), opened(b2):
            await b1.take(SLOT, 1)
            await b1.take(other, 2)
            await b2.take(SLOT, 3)
            core = clustered_core(FakeClock(T0))
            core.publish("orders", b"lost")
            core.publish("emails", b"kept")
            changes = core.take_effects().changes
            with pytest.raises(Fenced):
                await b1.write(changes)
            assert query(pg_url, "SELECT count(*) FROM mq.log") == [(0,)]
            await b1.write(changes)  # what group commit does next
            rows = query(pg_url, "SELECT body, slot FROM mq.log ORDER BY seq")
            assert rows == [(b"kept", other)]

    asyncio.run(scenario())


def test_a_slot_taken_over_comes_back_with_its_leases_and_their_ends(pg_url: str) -> None:
    async def scenario() -> None:
        clock = FakeClock(T0)
        b1, b2 = ClusteredPostgresStore(pg_url, "b1"), ClusteredPostgresStore(pg_url, "b2")
        async with opened(b1), opened(b2):
            await b1.take(SLOT, 1)
            core = Broker(clock, SETTINGS, ids=SlotIds(), lease_ends=True)
            core.declare("orders", max_deliveries=9, lease_s=30.0)
            for body in (b"a", b"b", b"c"):
                core.publish("orders", body)
            first, second = core.lease("orders", "worker/0123abcd", max_count=2)
            core.ack(first.msg_id, first.delivery, "worker/0123abcd")
            core.touch(second.msg_id, second.delivery, "worker/0123abcd", lease_s=100.0)
            await b1.write(core.take_effects().changes)
            await b2.take(SLOT, 2)
            recovered = await b2.load(SLOT, 99.0)
            assert recovered.leases == [(second.msg_id, "worker/0123abcd", T0 + 100.0 + 1.0)]
            assert {m.body for m in every_message(recovered)} == {b"b", b"c"}
            assert recovered.settings["orders"].max_deliveries == 9
            assert max(m.id for m in every_message(recovered)) < recovered.next_id

            later = Broker(FakeClock(T0 + 5), SETTINGS, ids=SlotIds())  # the new owner's core
            later.restore(recovered.settings, recovered.messages, recovered.next_id,
                          plain=recovered.plain)
            assert later.restore_leases(recovered.leases) == 1
            assert [d.body for d in later.lease("orders", "someone else", max_count=5)] == [b"c"]
            later.ack(second.msg_id, second.delivery, "worker/0123abcd")  # its receipt works

    asyncio.run(scenario())


def test_a_log_of_format_1_is_upgraded_with_slots_for_its_rows(pg_url: str) -> None:
    async def scenario() -> None:
        async with opened(ClusteredPostgresStore(pg_url, "b1")):
            pass
        for sql in ("ALTER TABLE mq.log DROP COLUMN slot", "DROP TABLE mq.slot_owner",
                    "UPDATE mq.meta SET value = 1 WHERE name = 'format_version'"):
            query(pg_url, sql)
        query(pg_url, "INSERT INTO mq.log (msg_id, kind, at, queue, body) "
                      "VALUES ($1, 0, 1.0, 'orders', 'x')", (7 << 10) | SLOT)
        async with opened(ClusteredPostgresStore(pg_url, "b1")):
            pass
        assert query(pg_url, "SELECT slot FROM mq.log") == [(SLOT,)]
        assert query(pg_url, "SELECT value FROM mq.meta WHERE name = 'format_version'") == [(2,)]

    asyncio.run(scenario())


def test_changes_of_a_slot_released_before_their_commit_are_refused_then_left_out(
        pg_url: str) -> None:
    async def scenario() -> None:
        store = ClusteredPostgresStore(pg_url, "b1")
        async with opened(store):
            await store.take(SLOT, 1)
            core = clustered_core(FakeClock(T0))
            core.publish("orders", b"waiting")
            changes = core.take_effects().changes
            store.release(SLOT)  # the map moved the slot while the publish waited
            with pytest.raises(Fenced) as fenced:
                await store.write(changes)
            assert fenced.value.lost == {SLOT}
            await store.write(changes)  # the retry leaves them out, and confirms nothing of them
            assert query(pg_url, "SELECT count(*) FROM mq.log") == [(0,)]

    asyncio.run(scenario())


def test_a_slot_released_while_its_batch_waits_for_the_connection_is_refused(
        pg_url: str) -> None:
    async def scenario() -> None:
        other = slot_of("emails")
        store = ClusteredPostgresStore(pg_url, "b1")
        async with opened(store):
            await store.take(SLOT, 1)
            await store.take(other, 2)
            core = clustered_core(FakeClock(T0))
            core.publish("emails", b"first")
            first = asyncio.create_task(store.write(core.take_effects().changes))
            core.publish("orders", b"waiting")
            second = asyncio.create_task(store.write(core.take_effects().changes))
            await asyncio.sleep(0)  # the first holds the connection, the second waits for it
            store.release(SLOT)  # the map moved the slot meanwhile
            await first
            with pytest.raises(Fenced) as fenced:
                await second
            assert fenced.value.lost == {SLOT}
            assert query(pg_url, "SELECT body FROM mq.log WHERE body IS NOT NULL") == [
                (b"first",)]
            assert store.watch.away_s() == 0.0  # the database answered all of it

    asyncio.run(scenario())


def test_work_abandoned_on_a_silent_database_counts_as_unanswered_until_it_answers(
        pg_url: str) -> None:
    async def scenario() -> None:
        store = ClusteredPostgresStore(pg_url, "b1")
        blocker = await asyncpg.connect(pg_url)
        async with opened(store):
            try:
                async with blocker.transaction():  # the take waits as on a silent database
                    await blocker.execute("LOCK TABLE mq.slot_owner IN ACCESS EXCLUSIVE MODE")
                    take = asyncio.create_task(store.take(SLOT, 1))
                    await asyncio.sleep(0.3)
                    assert store.watch.away_s() > 0.2
                    store.abandon()  # what a broker does once the database is away too long
                    with pytest.raises(StoreUnavailable):
                        await take
                    assert store.watch.away_s() > 0.2  # a lost connection is no answer
            finally:
                await blocker.close()
            await store.ping()
            assert store.watch.away_s() == 0.0

    asyncio.run(scenario())


def test_a_takeover_waits_a_bounded_time_for_a_commit_holding_the_slot(pg_url: str) -> None:
    async def scenario() -> None:
        store = ClusteredPostgresStore(pg_url, "b2")
        holder = await asyncpg.connect(pg_url)
        async with opened(store):
            await store.take(SLOT, 1)
            try:
                async with holder.transaction():  # as an old owner's commit left open would
                    await holder.execute("SELECT * FROM mq.slot_owner WHERE slot = $1 FOR SHARE",
                                         SLOT)
                    with pytest.raises(StoreUnavailable):
                        await store.take(SLOT, 2)
                    assert store.watch.away_s() == 0.0  # a lock timeout is a reply
            finally:
                await holder.close()
            await store.take(SLOT, 2)  # once it is let go
            assert store.epochs[SLOT] == 2

    asyncio.run(scenario())
