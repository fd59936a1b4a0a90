"""Group commit bounds its batches: while one is written, the next fill up to `max_changes`
each, so a reply waits for the commit of its own changes, not for all a fast producer sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings
from mq.storage.group_commit import GroupCommit
from mq.storage.postgres import PostgresStore
from mq.storage.sqlite import SQLiteStore
from tests.pg import REFUSE_POISON, query


def test_batches_close_at_max_changes_and_keep_a_submission_whole(tmp_path: Path) -> None:
    committed: list[int] = []

    async def scenario() -> list[int]:
        broker = Broker(FakeClock(), QueueSettings(retention_s=1_000.0, lease_s=30.0))
        store = SQLiteStore(str(tmp_path / "mq.db"), "normal", 60.0)
        await store.open()
        try:
            group = GroupCommit(store, committed.append, max_changes=5)
            numbers = []
            for count in (3, 3, 4, 1, 5):  # 3+3 crosses the line: 6 in batch 1, and so on
                for i in range(count):
                    broker.publish("q", b"%d" % i)
                numbers.append(group.submit(broker.take_effects().changes))
            group.close()
            await asyncio.wait_for(group.run(), timeout=10)
            assert group.stats.committed_changes == 16
            return numbers
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [1, 1, 2, 2, 3]
    assert committed == [1, 2, 3]


def test_a_batch_postgres_refuses_for_its_data_is_dropped_and_the_next_is_written(
        pg_url: str) -> None:
    done: list[tuple[str, int]] = []

    async def scenario() -> None:
        broker = Broker(FakeClock(), QueueSettings(retention_s=1_000.0, lease_s=30.0))
        store = PostgresStore(pg_url, "normal", 60.0)
        await store.open()
        try:
            for sql in REFUSE_POISON:
                query(pg_url, sql)
            group = GroupCommit(store, lambda n: done.append(("committed", n)),
                                on_rejected=lambda n: done.append(("rejected", n)), max_changes=1)
            for body in (b"poison", b"fine"):  # two batches, queued before the first is written
                broker.publish("q", body)
                group.submit(broker.take_effects().changes)
            group.close()
            await asyncio.wait_for(group.run(), timeout=10)
            assert (group.stats.rejected_batches, group.committed) == (1, 2)
            assert group.failing is None
        finally:
            await store.close()

    asyncio.run(scenario())
    assert done == [("rejected", 1), ("committed", 2)]
    assert query(pg_url, "SELECT body FROM log WHERE kind = 0") == [(b"fine",)]
