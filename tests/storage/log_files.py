"""What the storage tests share: a broker on a fake clock to make changes, and ways to write
them to a real file, reopen it as a restarted broker would, and read it from outside."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import Message, QueueSettings
from mq.storage.base import Recovered, Store
from mq.storage.choose import make_store
from mq.storage.packed import ids_of
from mq.storage.rows import BATCHED, PUBLISHES
from mq.storage.sqlite import SQLiteStore

T0 = 1_800_000_000.0


def AFTER_ALL() -> float:
    """The store's clock: later than every change the tests make, so compaction is due."""
    return T0 + 10**6


DEFAULTS = QueueSettings(retention_s=1_000.0, lease_s=30.0)


def new_broker(clock: FakeClock | None = None) -> Broker:
    return Broker(clock or FakeClock(T0), DEFAULTS)


@asynccontextmanager
async def opened(store: Store) -> AsyncIterator[Recovered]:
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


# The tables as versions 1 and 2 of the log format made them (mq/storage/sqlite.py, "Versions"),
# kept here as they were: the code's SCHEMA moves on, and an old file must still be readable.
VERSION_2_TABLES = """
CREATE TABLE log (
    seq INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL, kind INTEGER NOT NULL, at REAL NOT NULL,
    queue TEXT, body BLOB, key TEXT, delivery INTEGER, holder TEXT, ready_at REAL, detail TEXT,
    priority INTEGER, expires_at REAL, dedup TEXT, body_of INTEGER
);
CREATE INDEX log_by_msg ON log (msg_id);
CREATE TABLE queues (
    name TEXT PRIMARY KEY, retention_s REAL NOT NULL, lease_s REAL NOT NULL,
    max_deliveries INTEGER NOT NULL, dead_letter TEXT, dedup_window_s REAL NOT NULL
);
CREATE TABLE bindings (topic TEXT NOT NULL, queue TEXT NOT NULL, PRIMARY KEY (topic, queue));
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# Version 3 added the headers column (and its files are stamped as mq logs).
VERSION_3_TABLES = VERSION_2_TABLES.replace("body_of INTEGER\n", "body_of INTEGER, headers TEXT\n")
assert VERSION_3_TABLES != VERSION_2_TABLES


def old_log(path: Path, version: int, rows_sql: str) -> None:
    """A file of format `version` (1: not stamped, as the first mq wrote it) with its tables
    and the rows `rows_sql` inserts."""
    stamp = "" if version == 1 else f"PRAGMA user_version = {version};"
    tables = VERSION_2_TABLES
    if version >= 3:
        tables = VERSION_3_TABLES
        stamp += " PRAGMA application_id = 1836141639;"  # 0x6D714C47, as sqlite.py stamps
    conn = sqlite3.connect(path)
    try:
        conn.executescript(f"{tables} {rows_sql} {stamp}")
    finally:
        conn.close()


EVERY_ROW = "SELECT msg_id, kind, body FROM log ORDER BY seq"  # what `per_message` reads


def per_message(rows: list[tuple[object, ...]]) -> list[tuple[int, int]]:
    """The log's rows (EVERY_ROW) as one (msg_id, kind) per message's event, in log order:
    what a batch row (SQLite format 4: many messages' publishes, leases or acks) stands for is
    spelled out, message by message, as one row each would have been."""
    out: list[tuple[int, int]] = []
    for msg_id, kind, body in rows:
        assert isinstance(msg_id, int) and isinstance(kind, int)
        if kind >= BATCHED:
            assert isinstance(body, bytes)
            out.extend((i, kind - BATCHED) for i in ids_of(kind == PUBLISHES, body))
        else:
            out.append((msg_id, kind))
    return out


class LogTarget:
    """Where a parametrized storage test keeps its log: an SQLite file or a fresh Postgres
    database. The same test runs against both stores through it."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind = kind
        self.where = where  # a file path, or a postgresql:// URL

    def store(self, sync: str = "full", keep_history_s: float = 0.0,
              clock: Callable[[], float] = AFTER_ALL,
              max_body_memory_bytes: int | None = None) -> Store:
        return make_store(self.where, sync, keep_history_s, clock, max_body_memory_bytes)

    async def write_once(self, broker: Broker, sync: str = "full") -> None:
        """Open a store, write what the broker changed, close."""
        store = self.store(sync)
        async with opened(store):
            await store.write(broker.take_effects().changes)

    async def reopen(self) -> Recovered:
        """Open the log with a fresh store, as a restarted broker would, and close it again."""
        async with opened(self.store()) as recovered:
            return recovered

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        """Read the log with a connection of its own, outside the store."""
        if self.kind == "sqlite":
            return rows(Path(self.where), sql)
        from tests.pg import query
        return query(self.where, sql)

    async def rows_now(self, store: Store, sql: str) -> list[tuple[object, ...]]:
        """Read the log while `store` has it open: an SQLite store keeps its file to itself
        (exclusive locking mode), so through its own connection; Postgres with one of ours."""
        if isinstance(store, SQLiteStore):
            async with store.db.execute(sql) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        return self.rows(sql)

    def created(self) -> bool:
        """Whether the log exists now (its file, or its tables)."""
        if self.kind == "sqlite":
            return Path(self.where).exists()
        return self.rows("SELECT to_regclass('mq.log') IS NOT NULL") == [(True,)]
