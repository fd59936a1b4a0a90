"""The append-only log in SQLite (WAL mode), through aiosqlite so the event loop never waits.

Layout. One table, `log`, gets a row for every publish (with the body) and for every later
state change of a message (leased, acked, nacked, expired, released, poisoned, dropped). Rows are
only ever appended; the current state of a message is the fold of its rows in `seq` order, which
is what `open` computes. A message whose last row is final (acked, dropped) is deleted with all
its rows later, in bounded chunks (`compact`). Queue settings live in `queues`.

Cost. A batch of changes is written as ONE multi-row INSERT in autocommit mode: a single
statement is its own atomic transaction, so a group commit costs one hop to the aiosqlite thread
and one commit (one fsync with synchronous=FULL). Larger batches, and batches that also change
queue settings, use an explicit transaction.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

import aiosqlite

from mq.core.model import (
    Acked,
    Appended,
    Change,
    Declared,
    Dropped,
    Expired,
    Leased,
    Message,
    Nacked,
    Poisoned,
    QueueSettings,
    Released,
    State,
)
from mq.storage.base import Recovered

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    msg_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    at REAL NOT NULL,
    queue TEXT,
    body BLOB,
    key TEXT,
    delivery INTEGER,
    holder TEXT,
    ready_at REAL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS log_by_msg ON log (msg_id);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    retention_s REAL NOT NULL,
    lease_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
COLUMNS = "msg_id, kind, at, queue, body, key, delivery, holder, ready_at, detail"
ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ONE = f"INSERT INTO log ({COLUMNS}) VALUES {ROW}"
MAX_ROWS_PER_STATEMENT = 2_000  # 20,000 bound variables: far below SQLite's limit


class Event(IntEnum):
    PUBLISHED = 0
    LEASED = 1
    ACKED = 2
    NACKED = 3
    EXPIRED = 4
    DROPPED = 5
    RELEASED = 6  # the holder died; the message went back to ready
    POISONED = 7


FINAL = (Event.ACKED, Event.DROPPED)
SYNC_MODES = ("full", "normal")
Row = tuple[Any, ...]


def _row(c: Change) -> Row | None:
    """The log row of one change; None for changes that are not about a message."""
    if isinstance(c, Appended):
        m = c.message
        return (m.id, Event.PUBLISHED, m.published_at, m.queue, m.body, m.key, None, None, None,
                None)
    if isinstance(c, Leased):
        return (c.msg_id, Event.LEASED, c.at, None, None, None, c.delivery, c.holder, None, None)
    if isinstance(c, Acked):
        return (c.msg_id, Event.ACKED, c.at, None, None, None, None, None, None, None)
    if isinstance(c, Nacked):
        return (c.msg_id, Event.NACKED, c.at, None, None, None, None, None, c.ready_at, None)
    if isinstance(c, Expired):
        return (c.msg_id, Event.EXPIRED, c.at, None, None, None, None, None, None, None)
    if isinstance(c, Released):
        return (c.msg_id, Event.RELEASED, c.at, None, None, None, None, c.holder, None, None)
    if isinstance(c, Poisoned):
        return (c.msg_id, Event.POISONED, c.at, None, None, None, None, None, None, c.reason)
    if isinstance(c, Dropped):
        return (c.msg_id, Event.DROPPED, c.at, None, None, None, None, None, None, None)
    return None


class SQLiteStore:
    def __init__(self, path: str | Path, sync: str = "full") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.path = Path(path)
        self.sync = sync
        self._db: aiosqlite.Connection | None = None
        self._finished: list[int] = []  # ids of acked/dropped messages awaiting compaction

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @property
    def compaction_backlog(self) -> int:
        return len(self._finished)

    async def open(self) -> Recovered:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so a single INSERT commits by itself (see above).
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute(f"PRAGMA synchronous={self.sync.upper()}")
        await self.db.executescript(SCHEMA)
        return await self._recover()

    async def _recover(self) -> Recovered:
        db = self.db
        async with db.execute("SELECT name, retention_s, lease_s FROM queues") as cursor:
            settings = {name: QueueSettings(r, lease) for name, r, lease in await cursor.fetchall()}
        messages: dict[int, Message] = {}
        finished: set[int] = set()
        max_id = await self._meta("max_msg_id")
        async with db.execute(f"SELECT {COLUMNS} FROM log ORDER BY seq") as cursor:
            for (msg_id, kind, at, queue, body, key, delivery, _holder, ready_at,
                 _detail) in await cursor.fetchall():
                if kind == Event.PUBLISHED:
                    messages[msg_id] = Message(msg_id, queue, body, key, at)
                    max_id = max(max_id, msg_id)
                    continue
                msg = messages.get(msg_id)
                if msg is None:
                    continue
                if kind == Event.LEASED:
                    msg.deliveries = delivery
                    msg.state = State.READY  # leases are void after a restart
                elif kind == Event.NACKED and ready_at > at:
                    msg.state, msg.ready_at = State.DELAYED, ready_at
                elif kind == Event.RELEASED:
                    msg.deaths += 1
                elif kind == Event.POISONED:
                    msg.state = State.POISONED
                elif kind in FINAL:
                    finished.add(msg_id)
        self._finished = sorted(finished)
        live = [m for msg_id, m in messages.items() if msg_id not in finished]
        log.info("recovered %d messages in %d queues from %s (%d finished awaiting compaction)",
                 len(live), len({m.queue for m in live} | set(settings)), self.path,
                 len(finished))
        return Recovered(settings, live, max_id + 1)

    async def _meta(self, name: str) -> int:
        async with self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def write(self, changes: Sequence[Change]) -> None:
        rows = [row for row in map(_row, changes) if row is not None]
        self._finished.extend(row[0] for row in rows if row[1] in FINAL)
        declared = [(c.queue, c.settings.retention_s, c.settings.lease_s)
                    for c in changes if isinstance(c, Declared)]
        db = self.db
        if not declared and len(rows) <= MAX_ROWS_PER_STATEMENT:
            if rows:
                await db.execute(f"INSERT INTO log ({COLUMNS}) VALUES "
                                 + ", ".join([ROW] * len(rows)),
                                 list(itertools.chain.from_iterable(rows)))
            return
        await db.execute("BEGIN")
        try:
            await db.executemany(INSERT_ONE, rows)
            await db.executemany(
                "INSERT OR REPLACE INTO queues (name, retention_s, lease_s) VALUES (?, ?, ?)",
                declared)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def compact(self, limit: int) -> int:
        chunk, self._finished = self._finished[:limit], self._finished[limit:]
        if not chunk:
            return 0
        db = self.db
        await db.execute("BEGIN")
        try:
            # Remember the highest id ever used, so ids are never reused once its rows are gone.
            await db.execute("INSERT INTO meta (name, value) VALUES ('max_msg_id', ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                             (max(chunk),))
            await db.executemany("DELETE FROM log WHERE msg_id = ?", [(i,) for i in chunk])
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        return len(chunk)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
