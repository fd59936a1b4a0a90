"""The append-only log in SQLite (WAL mode), through aiosqlite so the event loop never waits.

Layout. One table, `log`, gets a row for every publish (with the body) and for every later
state change of a message (leased, acked, nacked, expired, released, moved, dropped). Rows are
only ever appended; the current state of a message is the fold of its rows in `seq` order, which
is what `open` computes. A message whose last row is final (acked, dropped) is deleted with all
its rows later, in bounded chunks (`compact`). Queue settings live in `queues`, topic bindings
in `bindings`.

Fan-out copies of one publish store the body once: the first copy's row holds it, the others
point at that row (`body_of`). A finished message whose body a live copy still needs keeps its
published and final rows until the last such copy is compacted.

Cost. A batch of changes is written as ONE multi-row INSERT in autocommit mode: a single
statement is its own atomic transaction, so a group commit costs one hop to the aiosqlite thread
and one commit (one fsync with synchronous=FULL). Larger batches, and batches that also change
queue settings, use an explicit transaction.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, cast

import aiosqlite

from mq.core.model import (
    Acked,
    Appended,
    Bound,
    Change,
    DeadLetter,
    Declared,
    Dropped,
    Expired,
    Leased,
    Message,
    Moved,
    Nacked,
    Purged,
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
    detail TEXT,
    priority INTEGER,
    expires_at REAL,
    dedup TEXT,
    body_of INTEGER
);
CREATE INDEX IF NOT EXISTS log_by_msg ON log (msg_id);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    retention_s REAL NOT NULL,
    lease_s REAL NOT NULL,
    max_deliveries INTEGER NOT NULL,
    dead_letter TEXT,
    dedup_window_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
    topic TEXT NOT NULL,
    queue TEXT NOT NULL,
    PRIMARY KEY (topic, queue)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
COLUMNS = ("msg_id, kind, at, queue, body, key, delivery, holder, ready_at, detail, priority, "
           "expires_at, dedup, body_of")
ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ONE = f"INSERT INTO log ({COLUMNS}) VALUES {ROW}"
RECOVERY_CHUNK_ROWS = 20_000
RECOVERY_PROGRESS_ROWS = 200_000  # a progress line this often while a big log is read
MAX_ROWS_PER_STATEMENT = 2_000  # 28,000 bound variables: far below SQLite's limit


class Event(IntEnum):
    PUBLISHED = 0
    LEASED = 1
    ACKED = 2
    NACKED = 3
    EXPIRED = 4
    DROPPED = 5
    RELEASED = 6  # the holder died; the message went back to ready
    DEAD_LETTERED = 7  # moved to a dead-letter queue
    REDRIVEN = 8  # moved back from one


FINAL = (Event.ACKED, Event.DROPPED)
SYNC_MODES = ("full", "normal")
Row = tuple[Any, ...]


# One function per change type, looked up by type: this runs for every change on the hot path.
# Plain ints for the kinds: binding an IntEnum costs more.
_LEASED, _ACKED, _NACKED, _EXPIRED, _DROPPED, _RELEASED = (
    int(Event.LEASED), int(Event.ACKED), int(Event.NACKED), int(Event.EXPIRED),
    int(Event.DROPPED), int(Event.RELEASED))


def _appended(c: Appended) -> Row:
    m = c.message
    return (m.id, int(Event.PUBLISHED), m.published_at, m.queue,
            m.body if c.body_of is None else None, m.key, None, None,
            m.ready_at if m.state is State.DELAYED else None, None,
            m.priority, m.expires_at, m.dedup_id, c.body_of)


def _moved(c: Moved) -> Row:
    kind = Event.REDRIVEN if c.redrive else Event.DEAD_LETTERED
    return (c.msg_id, int(kind), c.at, c.queue, None, None, c.delivery_base, None, None,
            c.reason, None, None, None, None)


_ROWS: dict[type, Callable[[Any], Row]] = {
    Appended: _appended,
    Leased: lambda c: (c.msg_id, _LEASED, c.at, None, None, None, c.delivery, c.holder, None,
                       None, None, None, None, None),
    Acked: lambda c: (c.msg_id, _ACKED, c.at, None, None, None, None, None, None, None, None,
                      None, None, None),
    Nacked: lambda c: (c.msg_id, _NACKED, c.at, None, None, None, None, None, c.ready_at,
                       c.error, None, None, None, None),
    Expired: lambda c: (c.msg_id, _EXPIRED, c.at, None, None, None, None, None, None, None,
                        None, None, None, None),
    Released: lambda c: (c.msg_id, _RELEASED, c.at, None, None, None, None, c.holder, None,
                         None, None, None, None, None),
    Moved: _moved,
    Dropped: lambda c: (c.msg_id, _DROPPED, c.at, None, None, None, None, None, None, c.reason,
                        None, None, None, None),
}


class SQLiteStore:
    def __init__(self, path: str | Path, sync: str = "full", keep_history_s: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        """`keep_history_s`: how long a finished (acked, removed) message's rows stay in the
        log, so HISTORY can still show its whole life, before compaction deletes them."""
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.path = Path(path)
        self.sync = sync
        self.keep_history_s = keep_history_s
        self.clock = clock
        self._db: aiosqlite.Connection | None = None
        # (finished at, id) of acked/removed messages awaiting compaction, oldest first
        self._finished: deque[tuple[float, int]] = deque()
        self._body_of: dict[int, int] = {}  # fan-out copy -> the message whose row has the body
        self._dependents: dict[int, int] = {}  # body holder -> copies not yet compacted
        self._kept: set[int] = set()  # finished holders kept for their dependents

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @property
    def compaction_backlog(self) -> int:
        return len(self._finished)

    def next_compaction_in(self) -> float | None:
        """Seconds until the oldest finished message may be compacted; None if there is none."""
        if not self._finished:
            return None
        return max(0.0, self._finished[0][0] + self.keep_history_s - self.clock())

    async def open(self) -> Recovered:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so a single INSERT commits by itself (see above).
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await self.db.execute("PRAGMA journal_mode=WAL")
            await self.db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            await self.db.executescript(SCHEMA)
            return await self._recover()
        except BaseException:
            await self.close()  # aiosqlite's thread would otherwise keep the process alive
            raise

    async def _recover(self) -> Recovered:
        db = self.db
        async with db.execute("SELECT name, retention_s, lease_s, max_deliveries, dead_letter, "
                              "dedup_window_s FROM queues") as cursor:
            settings = {row[0]: QueueSettings(*row[1:]) for row in await cursor.fetchall()}
        async with db.execute("SELECT topic, queue FROM bindings") as cursor:
            bindings = [(topic, queue) for topic, queue in await cursor.fetchall()]
        messages: dict[int, Message] = {}
        finished: dict[int, float] = {}  # id -> when it finished
        max_id = await self._meta("max_msg_id")
        async with db.execute(f"SELECT {COLUMNS} FROM log ORDER BY seq") as cursor:
            # In chunks: a million rows fetched at once would double the peak memory.
            read = 0
            while chunk := cast(list[Row], await cursor.fetchmany(RECOVERY_CHUNK_ROWS)):
                for row in chunk:  # plain tuples: the connection has no row factory
                    msg_id = row[0]
                    if row[1] == Event.PUBLISHED:
                        messages[msg_id] = self._published(row, messages)
                        max_id = max(max_id, msg_id)
                    elif row[1] in FINAL:
                        finished[msg_id] = row[2]
                    elif msg_id in messages:
                        _apply(messages[msg_id], row)
                read += len(chunk)
                if read % RECOVERY_PROGRESS_ROWS < len(chunk):
                    log.info("recovering %s: %d log rows read, %d messages so far", self.path,
                             read, len(messages))
        self._finished = deque(sorted((at, msg_id) for msg_id, at in finished.items()))
        live = [m for msg_id, m in messages.items() if msg_id not in finished]
        log.info("recovered %d messages in %d queues from %s (%d finished awaiting compaction)",
                 len(live), len({m.queue for m in live} | set(settings)), self.path,
                 len(finished))
        finished_dedup = [m for msg_id, m in messages.items()
                          if msg_id in finished and m.dedup_id is not None]
        return Recovered(settings, live, max_id + 1, bindings, finished_dedup)

    def _published(self, row: Row, messages: dict[int, Message]) -> Message:
        (msg_id, _, at, queue, body, key, _, _, ready_at, _, priority, expires_at, dedup,
         body_of) = row
        if body_of is not None:
            holder = messages.get(body_of)
            body = holder.body if holder is not None else b""
            self._body_of[msg_id] = body_of
            self._dependents[body_of] = self._dependents.get(body_of, 0) + 1
        msg = Message(msg_id, queue, body, key, at, priority=priority or 0,
                      expires_at=expires_at, dedup_id=dedup)
        if ready_at is not None and ready_at > at:
            msg.state, msg.ready_at = State.DELAYED, ready_at
        return msg

    async def _meta(self, name: str) -> int:
        async with self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def write(self, changes: Sequence[Change]) -> None:
        rows: list[Row] = []
        others: list[Change] = []  # settings and bindings: not rows of the log
        for c in changes:  # one pass: this runs for every change
            make = _ROWS.get(type(c))
            if make is None:
                others.append(c)
                continue
            rows.append(make(c))
            if type(c) is Appended and c.body_of is not None:
                self._body_of[c.message.id] = c.body_of
                self._dependents[c.body_of] = self._dependents.get(c.body_of, 0) + 1
        db = self.db
        if not others and len(rows) <= MAX_ROWS_PER_STATEMENT:
            if rows:
                await db.execute(f"INSERT INTO log ({COLUMNS}) VALUES "
                                 + ", ".join([ROW] * len(rows)),
                                 list(itertools.chain.from_iterable(rows)))
            self._note_finished(rows)
            return
        await db.execute("BEGIN")
        try:
            await db.executemany(INSERT_ONE, rows)
            for c in others:
                await db.execute(*_statement(c))
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        self._note_finished(rows)

    def _note_finished(self, rows: list[Row]) -> None:
        """Once committed (never before), finished messages may be compacted."""
        self._finished.extend((row[2], row[0]) for row in rows if row[1] in FINAL)

    async def compact(self, limit: int) -> int:
        """Delete up to `limit` finished messages whose history time is over; returns how many."""
        horizon = self.clock() - self.keep_history_s
        chunk: list[int] = []
        while self._finished and len(chunk) < limit and self._finished[0][0] <= horizon:
            chunk.append(self._finished.popleft()[1])
        if not chunk:
            return 0
        whole: list[int] = []
        keep_published: list[int] = []
        for msg_id in chunk:
            if self._dependents.get(msg_id):
                keep_published.append(msg_id)  # a live copy still reads its body
                self._kept.add(msg_id)
            else:
                whole.append(msg_id)
            holder = self._body_of.pop(msg_id, None)
            if holder is not None:
                self._dependents[holder] -= 1
                if not self._dependents[holder]:
                    del self._dependents[holder]
                    if holder in self._kept:
                        self._kept.discard(holder)
                        whole.append(holder)
        db = self.db
        await db.execute("BEGIN")
        try:
            # Remember the highest id ever used, so ids are never reused once its rows are gone.
            await db.execute("INSERT INTO meta (name, value) VALUES ('max_msg_id', ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                             (max(chunk),))
            # Finished ids mostly come in runs (FIFO consumption): one range delete per run.
            await db.executemany("DELETE FROM log WHERE msg_id BETWEEN ? AND ?", _runs(whole))
            await db.executemany("DELETE FROM log WHERE msg_id = ? AND kind NOT IN (?, ?, ?)",
                                 [(i, Event.PUBLISHED, *FINAL) for i in keep_published])
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        return len(chunk)

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        """Every row the log still has of `msg_id`, oldest first, as readable values."""
        async with self.db.execute(
                f"SELECT {COLUMNS} FROM log WHERE msg_id = ? ORDER BY seq", (msg_id,)) as cursor:
            rows = await cursor.fetchall()
        return [_event(tuple(r)) for r in rows]

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted, distinct ids as (first, last) ranges of consecutive ids."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _apply(msg: Message, row: Row) -> None:
    """Fold one non-publish row into the message's state at recovery."""
    kind, at, queue, delivery, ready_at, detail = row[1], row[2], row[3], row[6], row[8], row[9]
    if kind == Event.LEASED:
        msg.deliveries = delivery
        msg.state = State.READY  # leases are void after a restart
    elif kind == Event.NACKED:
        if detail is not None:
            msg.last_error = detail
        if ready_at > at:
            msg.state, msg.ready_at = State.DELAYED, ready_at
        else:
            msg.state = State.READY
    elif kind == Event.EXPIRED:
        msg.state = State.READY
    elif kind == Event.RELEASED:
        msg.deaths += 1
        msg.state = State.READY
    elif kind in (Event.DEAD_LETTERED, Event.REDRIVEN):
        msg.dead = DeadLetter(msg.queue, detail, at) if kind == Event.DEAD_LETTERED else None
        msg.delivery_base = delivery
        msg.queue, msg.state = queue, State.READY


def _statement(c: Change) -> tuple[str, tuple[Any, ...]]:
    if isinstance(c, Declared):
        s = c.settings
        return ("INSERT OR REPLACE INTO queues (name, retention_s, lease_s, max_deliveries, "
                "dead_letter, dedup_window_s) VALUES (?, ?, ?, ?, ?, ?)",
                (c.queue, s.retention_s, s.lease_s, s.max_deliveries, s.dead_letter,
                 s.dedup_window_s))
    if isinstance(c, Purged):
        return "DELETE FROM queues WHERE name = ?", (c.queue,)
    assert isinstance(c, Bound)
    if c.bound:
        return "INSERT OR IGNORE INTO bindings (topic, queue) VALUES (?, ?)", (c.topic, c.queue)
    return "DELETE FROM bindings WHERE topic = ? AND queue = ?", (c.topic, c.queue)


_EVENT_NAMES = {Event.PUBLISHED: "published", Event.LEASED: "leased", Event.ACKED: "acked",
                Event.NACKED: "nacked", Event.EXPIRED: "lease expired",
                Event.DROPPED: "removed", Event.RELEASED: "released (holder died)",
                Event.DEAD_LETTERED: "dead-lettered", Event.REDRIVEN: "redriven"}


def _event(row: Row) -> dict[str, Any]:
    (_, kind, at, queue, body, key, delivery, holder, ready_at, detail, priority, expires_at,
     dedup, _body_of) = row
    out: dict[str, Any] = {"at": at, "event": _EVENT_NAMES[Event(kind)]}
    if kind == Event.PUBLISHED:
        out.update(queue=queue, key=key, priority=priority or None, dedup_id=dedup,
                   size=len(body) if body is not None else None, delay_until=ready_at,
                   expires_at=expires_at)
    elif kind == Event.LEASED:
        out.update(delivery=delivery, holder=holder)
    elif kind == Event.NACKED:
        out.update(error=detail, ready_at=ready_at)
    elif kind == Event.RELEASED:
        out.update(holder=holder)
    elif kind in (Event.DEAD_LETTERED, Event.REDRIVEN, Event.DROPPED):
        out.update(queue=queue, reason=detail)
    return {k: v for k, v in out.items() if v is not None}
