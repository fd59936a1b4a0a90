"""The append-only log in SQLite (WAL mode), through aiosqlite so the event loop never waits.

Layout. `messages` gets one row per publish and is never updated. `events` gets one row per
state change of a message (leased, acked, nacked, expired, released, poisoned, dropped). The
current state of a message is the fold of its events, which is what `open` computes. A message
whose last event is final (acked, dropped) is deleted with its events later, in bounded chunks
(`compact`).
"""

from __future__ import annotations

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
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    key TEXT,
    published_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    msg_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    at REAL NOT NULL,
    delivery INTEGER,
    holder TEXT,
    ready_at REAL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS events_by_msg ON events (msg_id);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    retention_s REAL NOT NULL,
    lease_s REAL NOT NULL
);
"""


class Event(IntEnum):
    LEASED = 1
    ACKED = 2
    NACKED = 3
    EXPIRED = 4
    DROPPED = 5
    RELEASED = 6  # the holder died; the message went back to ready
    POISONED = 7


FINAL = (Event.ACKED, Event.DROPPED)
SYNC_MODES = ("full", "normal")


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
        self._db = await aiosqlite.connect(self.path)
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute(f"PRAGMA synchronous={self.sync.upper()}")
        await self.db.executescript(SCHEMA)
        await self.db.commit()
        return await self._recover()

    async def _recover(self) -> Recovered:
        db = self.db
        settings = {
            name: QueueSettings(retention_s, lease_s)
            async for name, retention_s, lease_s in await db.execute(
                "SELECT name, retention_s, lease_s FROM queues")
        }
        deliveries: dict[int, int] = {}
        delayed_until: dict[int, float] = {}
        deaths: dict[int, int] = {}
        poisoned: set[int] = set()
        finished: set[int] = set()
        async with db.execute("SELECT msg_id, kind, delivery, ready_at FROM events ORDER BY seq"
                              ) as cursor:
            for msg_id, kind, delivery, ready_at in await cursor.fetchall():
                if kind == Event.LEASED:
                    deliveries[msg_id] = delivery
                    delayed_until.pop(msg_id, None)
                elif kind == Event.NACKED:
                    delayed_until[msg_id] = ready_at
                elif kind == Event.RELEASED:
                    deaths[msg_id] = deaths.get(msg_id, 0) + 1
                elif kind == Event.POISONED:
                    poisoned.add(msg_id)
                elif kind in FINAL:
                    finished.add(msg_id)
        messages: list[Message] = []
        async with db.execute("SELECT id, queue, body, key, published_at FROM messages ORDER BY id"
                              ) as cursor:
            for msg_id, queue, body, key, published_at in await cursor.fetchall():
                if msg_id in finished:
                    continue
                msg = Message(msg_id, queue, body, key, published_at, deliveries.get(msg_id, 0),
                              deaths=deaths.get(msg_id, 0))
                ready_at = delayed_until.get(msg_id)
                if msg_id in poisoned:
                    msg.state = State.POISONED
                elif ready_at is not None:
                    msg.state, msg.ready_at = State.DELAYED, ready_at
                messages.append(msg)
        self._finished = sorted(finished)
        async with db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'") as cursor:
            row = await cursor.fetchone()
        next_id = (row[0] if row else 0) + 1
        log.info("recovered %d messages in %d queues from %s (%d finished awaiting compaction)",
                 len(messages), len({m.queue for m in messages} | set(settings)), self.path,
                 len(finished))
        return Recovered(settings, messages, next_id)

    async def write(self, changes: Sequence[Change]) -> None:
        appended: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        declared: list[tuple[Any, ...]] = []
        for c in changes:
            if isinstance(c, Appended):
                m = c.message
                appended.append((m.id, m.queue, m.body, m.key, m.published_at))
            elif isinstance(c, Leased):
                events.append((c.msg_id, Event.LEASED, c.at, c.delivery, c.holder, None, None))
            elif isinstance(c, Acked):
                events.append((c.msg_id, Event.ACKED, c.at, None, None, None, None))
                self._finished.append(c.msg_id)
            elif isinstance(c, Nacked):
                events.append((c.msg_id, Event.NACKED, c.at, None, None, c.ready_at, None))
            elif isinstance(c, Expired):
                events.append((c.msg_id, Event.EXPIRED, c.at, None, None, None, None))
            elif isinstance(c, Released):
                events.append((c.msg_id, Event.RELEASED, c.at, None, c.holder, None, None))
            elif isinstance(c, Poisoned):
                events.append((c.msg_id, Event.POISONED, c.at, None, None, None, c.reason))
            elif isinstance(c, Dropped):
                events.append((c.msg_id, Event.DROPPED, c.at, None, None, None, None))
                self._finished.append(c.msg_id)
            elif isinstance(c, Declared):
                declared.append((c.queue, c.settings.retention_s, c.settings.lease_s))
        db = self.db
        if appended:
            await db.executemany(
                "INSERT INTO messages (id, queue, body, key, published_at) VALUES (?, ?, ?, ?, ?)",
                appended)
        if events:
            await db.executemany(
                "INSERT INTO events (msg_id, kind, at, delivery, holder, ready_at, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", events)
        if declared:
            await db.executemany(
                "INSERT OR REPLACE INTO queues (name, retention_s, lease_s) VALUES (?, ?, ?)",
                declared)
        await db.commit()

    async def compact(self, limit: int) -> int:
        chunk, self._finished = self._finished[:limit], self._finished[limit:]
        if not chunk:
            return 0
        rows = [(msg_id,) for msg_id in chunk]
        await self.db.executemany("DELETE FROM messages WHERE id = ?", rows)
        await self.db.executemany("DELETE FROM events WHERE msg_id = ?", rows)
        await self.db.commit()
        return len(chunk)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
