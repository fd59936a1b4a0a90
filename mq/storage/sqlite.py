"""The append-only log in SQLite (WAL mode), through aiosqlite so the event loop never waits.

Layout. One table, `log`, gets a row for every publish (with the body) and for every later
event in a message's life (rows.py: one `LogRow` type, its `kind` an `Event` code). Rows are
only ever appended; the current state of a message is the fold of its rows in `seq` order, which
is what `open` computes (reading the publishes first, then the other rows: see `_recover`). A
message whose last row is final (acked, removed) is deleted with all
its rows later, in bounded chunks (`compact`). Queue settings live in `queues`, topic bindings
in `bindings`.

Consecutive plain publishes to one queue (an mpub), the leases of one delivery and the acks of
one batch ack are one batch row each (rows.py, "Batch rows"): a row that holds many messages.
A restart with a million queued then reads a few hundred rows, not a million (the sqlite3
module's cost is per row). Compaction takes the ids it deletes out of those rows
(`_compact_batch_rows`): a batch row is rewritten without them, or deleted when none is left,
so what stays in the log is what a message that stays still needs. That rewrite is the one
change made to a row after it is appended.

Fan-out copies of one publish store the body once: the first copy's row holds it, the others
point at that row (`body_of`). A finished message whose body a live copy still needs keeps its
published and final rows until the last such copy is compacted.

Cost. A batch of changes is written as ONE multi-row INSERT in autocommit mode: a single
statement is its own atomic transaction, so a group commit costs one hop to the aiosqlite thread
and one commit (one fsync with synchronous=FULL). Larger batches, and batches that also change
queue settings, use an explicit transaction. A hop costs about 100 us, so the log stays one
table: a narrow second table for the state changes would take two statements, and a
transaction of four hops, whenever a round both publishes and leases (any publish that wakes a
waiting consumer). Most fields of most rows are absent (a LEASED row has 4 of 15), and what cost
was binding them as None, not storing them (a NULL takes no room in SQLite's records): rows.py
binds absent fields as values SQLite stores as NULL, on the sqlite3 module's fast path.

One broker per log: `open` takes an exclusive lock beside the file (lock.py) and `close`
gives it back, so a second broker on the same file is refused at start (`LogInUseError`).
Being the file's only user, the store runs SQLite in exclusive locking mode: the lock is taken
at the first write and kept, instead of six fcntl calls per commit (about 10 % of a one-row
commit's CPU). So while a broker runs, no other program can read or write its log (the sqlite3
shell gets "database is locked"); stop the broker, or ask it (STATS, HISTORY), instead.

Versions. The file's format version is kept in SQLite's `user_version` header field:
  1  the first log, which stamped no version (a file with tables and user_version 0);
  2  adds the LEFT event (code 9: a lease given back by a goodbye, logged as a nack before);
  3  adds the `headers` column: a publish's headers as a JSON object (NULL: none). A version-2
     file gains the column, NULL in every row it has: its messages had no headers.
  4  adds batch rows (kinds BATCHED + PUBLISHED, LEASED and ACKED, rows.py): one row for
     many messages' plain publishes, leases or acks. A version-3 file holds none and needs no
     rewrite; an older mq would misread them, so it refuses a version-4 file.
`open` reads the version before it writes anything. A new file is created at SCHEMA_VERSION.
An older file is upgraded in place, one step at a time, each step in one transaction that also
stamps its version, so a crash leaves the file at one version or the next, never between. A
file of a newer version than this code knows is refused (`LogVersionError`) and left untouched:
an older broker could misread rows it does not know.
Whose file. An mq log is stamped with APPLICATION_ID (SQLite's `application_id` header field)
when it is created or upgraded. A file without the stamp is taken for an mq log only when it has
the tables every mq log has (versions 1 and 2 were written before the stamp), and for a new one
only when it has no tables at all; any other file is another program's, refused untouched
(`NotAnMqLogError`).
To change the format: bump SCHEMA_VERSION, add the step from the previous version to UPGRADES
(SQL that rewrites what changed; empty when the new version only adds what old code never
wrote, like a new event code), note it in the list above, and add a storage test that opens a
file of the old version. Adding an `Event` code is a format change: old code cannot describe it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import aiosqlite

from mq import __version__
from mq.core.events import FINAL, Bound, Change, Declared, Event, Purged
from mq.core.model import QueueSettings
from mq.storage.base import MAX_BODY_READ, Recovered, StoreRejected, StoreUnavailable
from mq.storage.ledger import Ledger
from mq.storage.lock import LogLock, LogRefused
from mq.storage.packed import ids_of, unpack_publishes, without
from mq.storage.rows import BATCHED, MAX_SPAN, PUBLISHES, TEXT_FIELDS, Fold, LogRow, history

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
APPLICATION_ID = 0x6D714C47  # "mqLG" in PRAGMA application_id: this file is an mq log
MQ_TABLES = frozenset({"log", "queues"})  # what every mq log has had, stamped or not
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
    body_of INTEGER,
    headers TEXT
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
# version -> the SQL that takes a file of that version to the next one
UPGRADES: dict[int, str] = {
    1: "",  # 2 only adds the LEFT event code, which a version-1 file never holds
    2: "ALTER TABLE log ADD COLUMN headers TEXT;",  # 3: headers, none in an older file
    3: "",  # 4 only adds batch rows, which a version-3 file never holds
}
COLUMNS = ", ".join(LogRow._fields)
# Absent text fields are bound as 0 and stored as NULL (rows.py, NO_TEXT): no None is bound.
ROW = "(" + ", ".join("NULLIF(?, 0)" if f in TEXT_FIELDS else "?" for f in LogRow._fields) + ")"
INSERT_ONE = f"INSERT INTO log ({COLUMNS}) VALUES {ROW}"
_WITHOUT_OPTIONS = ("priority = 0 AND key IS NULL AND ready_at IS NULL AND expires_at IS NULL "
                    "AND dedup IS NULL AND body_of IS NULL AND headers IS NULL")
RECOVER_PLAIN = ("SELECT msg_id, at, queue, body, kind FROM log "
                 f"WHERE (kind = {int(Event.PUBLISHED)} AND {_WITHOUT_OPTIONS} "
                 f"OR kind = {PUBLISHES}) ORDER BY seq")
RECOVER_PUBLISHED = ("SELECT msg_id, at, queue, body, key, ready_at, priority, expires_at, "
                     f"dedup, body_of, headers FROM log WHERE kind = {int(Event.PUBLISHED)} "
                     f"AND NOT ({_WITHOUT_OPTIONS}) ORDER BY seq")
RECOVER_EVENTS = ("SELECT msg_id, kind, at, queue, delivery, ready_at, detail, body FROM log "
                  f"WHERE kind NOT IN ({int(Event.PUBLISHED)}, {PUBLISHES}) ORDER BY seq")
# A fan-out copy's row has no body: it is in the row of the copy named by body_of.
READ_BODIES = ("SELECT l.msg_id, coalesce(l.body, h.body), l.body_of FROM log AS l "
               "LEFT JOIN log AS h "
               f"ON h.msg_id = l.body_of AND h.kind = {int(Event.PUBLISHED)} "
               f"WHERE l.kind = {int(Event.PUBLISHED)} AND l.msg_id IN ({{}})")
# The rows of one message: its own, and the batch rows that may hold it (rows.history picks).
HISTORY = (f"SELECT {COLUMNS} FROM log WHERE msg_id > ? AND msg_id <= ? "
           f"AND (msg_id = ? OR kind >= {BATCHED}) ORDER BY seq")
# The batch rows that may hold an id in (?, ?]: those whose msg_id is within MAX_SPAN below.
BATCH_ROWS_NEAR = (f"SELECT seq, kind, body FROM log WHERE kind >= {BATCHED} "
                   "AND msg_id > ? AND msg_id <= ?")
PUBLISH_ROWS_NEAR = f"SELECT body FROM log WHERE kind = {PUBLISHES} AND msg_id > ? AND msg_id <= ?"
RECOVERY_CHUNK_ROWS = 20_000
RECOVERY_CHUNK_BYTES = 8 << 20  # bodies per chunk of publishes, about (two are in memory, read
# by the aiosqlite thread, whose freed memory the allocator may keep)
RECOVERY_FIRST_ROWS = 16  # rows of the first chunk of publishes, before their size is known
RECOVERY_PROGRESS_ROWS = 200_000  # a progress line this often while a big log is read
MAX_ROWS_PER_STATEMENT = 2_000  # 30,000 bound variables: below SQLite's limit (32,766)
SYNC_MODES = ("full", "normal")


class LogVersionError(LogRefused):
    """The file is an mq log of a version this code does not know."""


class NotAnMqLogError(LogRefused):
    """The file is another program's SQLite database."""


class LogPlaceError(LogRefused):
    """The log's directory cannot be made or written (missing, read-only, a file)."""


class SQLiteStore:
    def __init__(self, path: str | Path, sync: str = "full", keep_history_s: float = 0.0,
                 clock: Callable[[], float] = time.time,
                 max_body_memory_bytes: int | None = None) -> None:
        """`keep_history_s`: how long a finished (acked, removed) message's rows stay in the
        log, so HISTORY can still show its whole life, before compaction deletes them.
        `max_body_memory_bytes`: bodies of plain messages recovered at most (the rest are
        read back when delivered: `read_bodies`); None: all."""
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.path = Path(path)
        self.sync = sync
        self.keep_history_s = keep_history_s
        self.clock = clock
        self.max_body_memory_bytes = max_body_memory_bytes
        self._db: aiosqlite.Connection | None = None
        self._lock = LogLock(self.path)  # one broker per log, for as long as it is open
        # the compaction backlog and the fan-out copies (ledger.py); runs as batch rows
        self._ledger = Ledger(batch_rows=True)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    @property
    def compaction_backlog(self) -> int:
        return len(self._ledger.finished)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def log_bytes(self) -> int:
        """Bytes of the log on disk now: the database file and its write-ahead log."""
        total = 0
        for part in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):  # no WAL file between checkpoints
                total += part.stat().st_size
        return total

    def next_compaction_in(self) -> float | None:
        """Seconds until the oldest finished message may be compacted; None if there is none."""
        due = self._ledger.finished.next_due()
        return None if due is None else max(0.0, due + self.keep_history_s - self.clock())

    async def open(self) -> Recovered:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()  # before the file is touched: a second broker is refused
        except OSError as e:
            raise LogPlaceError(
                f"cannot create the log {self.path}: {e.strerror} ({e.filename}). Point --db "
                "at a file in a directory this user may write") from None
        try:
            # isolation_level=None: autocommit, so a single INSERT commits by itself (above).
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            version = await self._version()  # before anything is written to the file
            await self.db.execute("PRAGMA journal_mode=WAL")
            await self.db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            await self.db.execute("PRAGMA locking_mode=EXCLUSIVE")  # see "One broker per log"
            await self._upgrade(version)
            return await self._recover()
        except BaseException:
            await self.close()  # aiosqlite's thread would otherwise keep the process alive
            raise

    # --- versions -----------------------------------------------------------------------------

    async def _version(self) -> int | None:
        """The file's format version; None for a new, empty file. Refuses a file that is not
        an mq log, and one of a newer version."""
        if not await self._is_mq_log():
            return None
        version = await self._scalar("PRAGMA user_version")
        if version == 0:
            return 1
        if version > SCHEMA_VERSION:
            raise LogVersionError(
                f"{self.path} is an mq log of format version {version}, written by a newer mq; "
                f"this mq ({__version__}) reads versions up to {SCHEMA_VERSION}. Run an mq that "
                "knows that version (the one that wrote the file, or newer); the file was left "
                "as it was")
        return version

    async def _is_mq_log(self) -> bool:
        """True for an mq log, False for a file without tables (anyone's: it becomes one).
        Refuses another program's database: one stamped with another application id, or one
        with tables but not those every mq log has (logs written before mq stamped its id)."""
        app_id = await self._scalar("PRAGMA application_id")
        if app_id == APPLICATION_ID:
            return True
        if app_id != 0:
            raise NotAnMqLogError(
                f"{self.path} is not an mq log: it is the SQLite database of another program "
                f"(application id {app_id:#010x}); mq leaves it as it is. Give mq a path of its "
                "own with --db")
        tables = await self._tables()
        if tables and not MQ_TABLES.issubset(tables):
            shown = ", ".join(sorted(tables)[:10]) + (", ..." if len(tables) > 10 else "")
            raise NotAnMqLogError(
                f"{self.path} is not an mq log: it is an SQLite database with other tables "
                f"({shown}); mq would not add its own to it and leaves it as it is. Give mq a "
                "path of its own with --db")
        return bool(tables)

    async def _tables(self) -> set[str]:
        async with self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as c:
            return {str(row[0]) for row in await c.fetchall()}

    async def _upgrade(self, version: int | None) -> None:
        """Create a new file at SCHEMA_VERSION, or take an older one there step by step. Each
        is stamped as an mq log (application_id) in its last transaction."""
        stamp = f"PRAGMA application_id = {APPLICATION_ID};"
        if version is None:
            await self.db.executescript(
                f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; {stamp} COMMIT;")
            return
        for step in range(version, SCHEMA_VERSION):
            log.info("upgrading %s from log format version %d to %d", self.path, step, step + 1)
            await self.db.executescript(
                f"BEGIN; {UPGRADES[step]} PRAGMA user_version = {step + 1}; {stamp} COMMIT;")
        if await self._scalar("PRAGMA application_id") != APPLICATION_ID:
            await self.db.execute(stamp)  # a current log from before mq stamped its id

    async def _scalar(self, sql: str) -> int:
        async with self.db.execute(sql) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # --- recovery -----------------------------------------------------------------------------

    async def _recover(self) -> Recovered:
        db = self.db
        async with db.execute("SELECT name, retention_s, lease_s, max_deliveries, dead_letter, "
                              "dedup_window_s FROM queues") as cursor:
            settings = {row[0]: QueueSettings(*row[1:]) for row in await cursor.fetchall()}
        async with db.execute("SELECT topic, queue FROM bindings") as cursor:
            bindings = [(topic, queue) for topic, queue in await cursor.fetchall()]
        fold = Fold(self.max_body_memory_bytes)
        # Three passes, each selecting only what its rows have: fewer columns is what makes a
        # restart with a million queued messages fast (a backlog is mostly plain publishes).
        await self._read(RECOVER_PLAIN, fold.published_plain, body_at=3)
        await self._read(RECOVER_PUBLISHED, fold.published)
        await self._read(RECOVER_EVENTS, fold.events)
        max_id_ever = await self._scalar("SELECT value FROM meta WHERE name = 'max_msg_id'")
        recovered = self._ledger.recovered(fold, settings, bindings, max_id_ever)
        live, plain = recovered.messages, recovered.plain
        log.info("recovered %d messages in %d queues from %s (%d finished awaiting compaction)",
                 len(live) + sum(map(len, plain.values())),
                 len({m.queue for m in live} | set(plain) | set(settings)), self.path,
                 len(fold.finished))
        return recovered

    async def _read(self, sql: str, fold: Callable[[list[tuple[Any, ...]]], None],
                    body_at: int | None = None) -> None:
        """Hand the rows of `sql` to `fold` in chunks (a million rows fetched at once would
        double the peak memory), fetching the next chunk while one is folded: the aiosqlite
        thread reads the file while the loop builds messages. `body_at`: the column of a
        body, by which chunks are kept near RECOVERY_CHUNK_BYTES (a batch row holds up to a
        MiB of bodies)."""
        read = 0
        size = RECOVERY_CHUNK_ROWS if body_at is None else RECOVERY_FIRST_ROWS
        async with self.db.execute(sql) as cursor:
            ahead = asyncio.ensure_future(cursor.fetchmany(size))
            try:
                while chunk := cast(list[tuple[Any, ...]], await ahead):
                    if body_at is not None:
                        size = _rows_within_bytes(chunk, body_at)
                    ahead = asyncio.ensure_future(cursor.fetchmany(size))
                    fold(chunk)  # plain tuples: the connection has no row factory
                    read += len(chunk)
                    if read % RECOVERY_PROGRESS_ROWS < len(chunk):
                        log.info("recovering %s: %d log rows read", self.path, read)
            finally:
                if not ahead.done():
                    await asyncio.wait([ahead])  # the cursor is closed only after it

    # --- writing ------------------------------------------------------------------------------

    async def write(self, changes: Sequence[Change]) -> None:
        try:
            await self._write(changes)
        except (sqlite3.IntegrityError, sqlite3.DataError) as e:
            # What the file refuses for the rows' content (a constraint, a value too big): the
            # same rows would fail again, so it is no outage to retry through.
            raise StoreRejected(f"{self.path}: {e}") from e

    async def _write(self, changes: Sequence[Change]) -> None:
        batch = self._ledger.batch(changes)
        rows = batch.rows
        db = self.db
        if not batch.others and len(rows) <= MAX_ROWS_PER_STATEMENT:
            if rows:
                await db.execute(f"INSERT INTO log ({COLUMNS}) VALUES "
                                 + ", ".join([ROW] * len(rows)),
                                 list(itertools.chain.from_iterable(rows)))
            self._ledger.committed(batch)
            return
        await db.execute("BEGIN")
        try:
            await db.executemany(INSERT_ONE, rows)
            for c in batch.others:
                await db.execute(*_statement(c))
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        self._ledger.committed(batch)

    async def compact(self, limit: int) -> int:
        """Delete up to `limit` finished messages whose history time is over; returns how many."""
        chunk = self._ledger.chunk(self.clock() - self.keep_history_s, limit)
        if chunk is None:
            return 0
        db = self.db
        await db.execute("BEGIN")
        try:
            # Remember the highest id ever used, so ids are never reused once its rows are gone.
            await db.execute("INSERT INTO meta (name, value) VALUES ('max_msg_id', ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                             (chunk.max_id,))
            # Finished ids mostly come in runs (FIFO consumption): one range delete per run.
            await db.executemany(
                f"DELETE FROM log WHERE msg_id BETWEEN ? AND ? AND kind < {BATCHED}", chunk.runs)
            await db.executemany(
                f"DELETE FROM log WHERE msg_id = ? AND kind NOT IN (?, ?, ?) AND kind < {BATCHED}",
                [(i, Event.PUBLISHED, *FINAL) for i in chunk.keep_published])
            await self._compact_batch_rows(chunk.runs, chunk.keep_published)
            await db.execute("COMMIT")
        except BaseException:
            self._ledger.restore(chunk)  # its rows are all still there: tried again later
            await db.execute("ROLLBACK")
            raise
        return chunk.count

    async def _compact_batch_rows(self, runs: list[tuple[int, int]], kept: list[int]) -> None:
        """Take the ids of compacted messages out of the batch rows that hold them: all of
        `runs` (first, last), and of `kept` (finished holders of a body a fan-out copy still
        reads) all but their publish and final rows'. A row left with no id is deleted."""
        whole = {i for first, last in runs for i in range(first, last + 1)}
        partly = whole | set(kept)
        rows: dict[int, tuple[int, bytes]] = {}  # seq -> (kind, body)
        for first, last in _windows([*runs, *((i, i) for i in kept)]):
            async with self.db.execute(BATCH_ROWS_NEAR, (first - MAX_SPAN, last)) as cursor:
                rows.update((seq, (kind, body)) for seq, kind, body in await cursor.fetchall())
        kept_rows = {PUBLISHES, *(BATCHED + int(e) for e in FINAL)}
        deleted: list[tuple[int]] = []
        rewritten: list[tuple[int, bytearray, int]] = []
        for seq, (kind, body) in rows.items():
            gone = whole if kind in kept_rows else partly
            publishes = kind == PUBLISHES
            if gone.isdisjoint(ids_of(publishes, body)):
                continue
            left = without(publishes, body, gone)
            if left is None:
                deleted.append((seq,))
            else:
                rewritten.append((*left, seq))
        await self.db.executemany("DELETE FROM log WHERE seq = ?", deleted)
        await self.db.executemany("UPDATE log SET msg_id = ?, body = ? WHERE seq = ?", rewritten)

    async def read_bodies(self, ids: Sequence[int]) -> dict[int, bytes]:
        if len(ids) > MAX_BODY_READ:
            raise ValueError(f"at most {MAX_BODY_READ} bodies per read, got {len(ids)}")
        if not ids:
            return {}
        try:
            async with self.db.execute(READ_BODIES.format(", ".join("?" * len(ids))),
                                       ids) as c:
                rows = await c.fetchall()
            found = {msg_id: body for msg_id, body, _ in rows if body is not None}
            # The others are in publish batch rows: their own, or their body holder's.
            holder = {msg_id: msg_id for msg_id in ids}
            holder.update((msg_id, body_of) for msg_id, body, body_of in rows
                          if body is None and body_of is not None)
            wanted = {i: h for i, h in holder.items() if i not in found}
            if wanted:
                batched = await self._bodies_in_batch_rows(set(wanted.values()))
                found.update((i, batched[h]) for i, h in wanted.items() if h in batched)
        except sqlite3.Error as e:  # the caller knows stores, not SQLite
            raise StoreUnavailable(f"{self.path}: {e}") from e
        return found

    async def _bodies_in_batch_rows(self, ids: set[int]) -> dict[int, bytes]:
        """The bodies of those of `ids` whose publishes are in batch rows, by id."""
        out: dict[int, bytes] = {}
        for first, last in _windows([(i, i) for i in ids]):
            async with self.db.execute(PUBLISH_ROWS_NEAR, (first - MAX_SPAN, last)) as cursor:
                for (body,) in await cursor.fetchall():
                    held, _, bodies = unpack_publishes(body)
                    out.update((i, b) for i, b in zip(held, bodies, strict=True) if i in ids)
        return out

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        """Every row the log still has of `msg_id`, oldest first, as HISTORY events."""
        async with self.db.execute(HISTORY, (msg_id - MAX_SPAN, msg_id, msg_id)) as cursor:
            rows = await cursor.fetchall()
        return history(rows, msg_id)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
        self._lock.release()


def _rows_within_bytes(chunk: list[tuple[Any, ...]], body_at: int) -> int:
    """How many rows like those of `chunk` make a chunk of about RECOVERY_CHUNK_BYTES."""
    size = sum(map(len, map(itemgetter(body_at), chunk))) or 1
    return max(RECOVERY_FIRST_ROWS,
               min(RECOVERY_CHUNK_ROWS, len(chunk) * RECOVERY_CHUNK_BYTES // size))


def _windows(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(first, last) ranges of ids, merged where the gap between them is under MAX_SPAN: one
    query each."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first - out[-1][1] < MAX_SPAN:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


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
