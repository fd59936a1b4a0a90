"""What the storage tests share: a broker on a fake clock to make changes, and ways to write
them to a real file, reopen it as a restarted broker would, and read it from outside."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import Message, QueueSettings
from mq.storage.base import Recovered
from mq.storage.sqlite import SQLiteStore

T0 = 1_800_000_000.0


def AFTER_ALL() -> float:
    """The store's clock: later than every change the tests make, so compaction is due."""
    return T0 + 10**6


DEFAULTS = QueueSettings(retention_s=1_000.0, lease_s=30.0)


def new_broker(clock: FakeClock | None = None) -> Broker:
    return Broker(clock or FakeClock(T0), DEFAULTS)


@asynccontextmanager
async def opened(store: SQLiteStore) -> AsyncIterator[Recovered]:
    """Open `store` and always close it, even when open itself fails: a live aiosqlite thread
    (not a daemon) would otherwise hang the test process at exit."""
    try:
        yield await store.open()
    finally:
        await store.close()


async def write_once(path: Path, broker: Broker, sync: str = "full") -> None:
    """Open the store, write what the broker changed, close."""
    store = SQLiteStore(path, sync, clock=AFTER_ALL)
    async with opened(store):
        await store.write(broker.take_effects().changes)


async def reopen(path: Path) -> Recovered:
    """Open the file with a fresh store, as a restarted broker would, and close it again."""
    async with opened(SQLiteStore(path, clock=AFTER_ALL)) as recovered:
        return recovered


def every_message(recovered: Recovered) -> list[Message]:
    """Every recovered message as a full one, in id order: those recovered whole and those of
    the queues' compact backlogs of plain messages."""
    plain = [m for queue, backlog in recovered.plain.items()
             for m in map(lambda i: backlog.view(i, queue), range(1, recovered.next_id))
             if m is not None]
    return sorted([*recovered.messages, *plain], key=lambda m: m.id)


def by_id(recovered: Recovered) -> dict[int, Message]:
    return {m.id: m for m in every_message(recovered)}


def lease_one(broker: Broker, holder: str = "h1", lease_s: float | None = None
              ) -> tuple[int, int]:
    """Lease one message of queue "q"; its receipt as (msg_id, delivery)."""
    [leased] = broker.lease("q", holder, lease_s)
    return leased.msg_id, leased.delivery


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the file with the plain sqlite3 module, outside the store."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
