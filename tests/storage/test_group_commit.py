"""Group commit bounds its batches: while one is written, the next fill up to `max_changes`
each, so a reply waits for the commit of its own changes, not for all a fast producer sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings
from mq.storage.group_commit import GroupCommit
from mq.storage.sqlite import SQLiteStore


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
