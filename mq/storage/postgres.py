"""The append-only log in PostgreSQL, through asyncpg: the same log as sqlite.py, on a database
server that can be replicated (`mq serve --db postgresql://user@host:port/dbname`).

The semantics are SQLite's, and so is most of the code that gives them: rows are encoded by
rows.py, folded back by its `Fold` (with the SQLite store's own recovery queries), and the
compaction backlog and fan-out copies are kept by ledger.py. What is Postgres's own: the tables
and statements (pg_sql.py, which is also where a row becomes Postgres values), and the
connections, the one-broker lock and reconnecting (pg_link.py).

Cost. A group commit is one binary COPY of its rows and one commit (a WAL flush with
synchronous_commit on); it beat a multi-row INSERT from arrays at every batch size measured
(pg_sql.py). A batch that also changes settings or bindings is a transaction of a few
statements; compaction is one statement.

What a confirmation promises (protocol.md 5): `write` returns once Postgres has committed,
under the session's synchronous_commit, `on` for `--sync full`, `off` for `--sync normal`.

A lost connection raises `StoreUnavailable` (pg_link.py). A write whose commit was under way
when the connection went may have committed: Postgres cannot say. Group commit writes it again,
so such a batch can be in the log twice. Folding takes that (a row says what a message's state
became, not what to add to it), but HISTORY then shows those events twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from mq.core.events import Change
from mq.storage import pg_sql
from mq.storage.base import MAX_BODY_READ, Recovered, StoreRefused
from mq.storage.ledger import Ledger
from mq.storage.pg_link import PgLink
from mq.storage.rows import Fold, Values, history
from mq.storage.sqlite import RECOVER_EVENTS, RECOVER_PLAIN, RECOVER_PUBLISHED, SYNC_MODES

log = logging.getLogger(__name__)

RECOVERY_CHUNK_ROWS = 20_000


class PostgresStore:
    def __init__(self, url: str, sync: str = "full", keep_history_s: float = 0.0,
                 clock: Callable[[], float] = time.time,
                 max_body_memory_bytes: int | None = None) -> None:
        """`url`: a libpq-style URL (postgresql://user:password@host:port/dbname).
        `keep_history_s`: how long a finished message's rows stay for HISTORY.
        `max_body_memory_bytes`: bodies of plain messages recovered at most (the rest are
        recovered as their sizes and read back with `read_bodies`); None: every one."""
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        self.sync = sync
        self.keep_history_s = keep_history_s
        self.clock = clock
        self.max_body_memory_bytes = max_body_memory_bytes
        self._link = PgLink(url, sync)
        self._ledger = Ledger()
        self._log_bytes = 0  # as of the last open or compaction: a scrape must not query

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return self._link.shown

    @property
    def compaction_backlog(self) -> int:
        return len(self._ledger.finished)

    @property
    def is_open(self) -> bool:
        return self._link.is_open

    def log_bytes(self) -> int:
        """Bytes of the log table with its indexes and TOAST, as of the last open or compaction
        (the size changes little between them: rows are deleted only by compaction)."""
        return self._log_bytes

    def next_compaction_in(self) -> float | None:
        due = self._ledger.finished.next_due()
        return None if due is None else max(0.0, due + self.keep_history_s - self.clock())

    async def open(self) -> Recovered:
        await self._link.open()  # the lock first: a second broker is refused before anything
        try:
            async with self._link.session() as conn:
                await self._upgrade(conn)
                recovered = await self._recover(conn)
                self._log_bytes = await conn.fetchval(pg_sql.LOG_BYTES)
                return recovered
        except BaseException:
            await self.close()
            raise

    async def _upgrade(self, conn: asyncpg.Connection) -> None:
        """Create the tables, or take an older database to FORMAT_VERSION step by step, each
        step in one transaction with its stamp. A newer database is refused untouched."""
        exists = await conn.fetchval("SELECT to_regclass('mq.meta') IS NOT NULL")
        version = await conn.fetchval(pg_sql.VERSION) if exists else None
        if version is not None and version > pg_sql.FORMAT_VERSION:
            raise StoreRefused(
                f"{self.shown} holds an mq log of format version {version}, written by a newer "
                f"mq; this one reads Postgres logs up to version {pg_sql.FORMAT_VERSION}. Run "
                "an mq that knows that version; the database was left as it was")
        if version is None:
            async with conn.transaction():
                await conn.execute(pg_sql.SCHEMA)
                await conn.execute(pg_sql.STAMP, pg_sql.FORMAT_VERSION)
            return
        for step in range(version, pg_sql.FORMAT_VERSION):
            log.info("upgrading %s from log format version %d to %d", self.shown, step, step + 1)
            async with conn.transaction():
                await conn.execute(pg_sql.UPGRADES[step])
                await conn.execute(pg_sql.STAMP, step + 1)

    async def _recover(self, conn: asyncpg.Connection) -> Recovered:
        settings = dict(pg_sql.settings_of(r) for r in await conn.fetch(pg_sql.SETTINGS))
        bindings = [(r[0], r[1]) for r in await conn.fetch(pg_sql.BINDINGS)]
        fold = Fold(self.max_body_memory_bytes)
        # Records unpack like tuples, so Fold takes them as they come.
        await _read(conn, RECOVER_PLAIN, fold.published_plain)
        await _read(conn, RECOVER_PUBLISHED, fold.published)
        await _read(conn, RECOVER_EVENTS, fold.events)
        max_id_ever = await conn.fetchval(pg_sql.MAX_ID_EVER) or 0
        recovered = self._ledger.recovered(fold, settings, bindings, max_id_ever)
        log.info("recovered %d messages from %s (%d finished awaiting compaction)",
                 len(recovered.messages), self.shown, len(fold.finished))
        return recovered

    async def write(self, changes: Sequence[Change]) -> None:
        batch = self._ledger.batch(changes)
        async with self._link.session() as conn:
            if not batch.others:
                await _copy(conn, batch.rows)
            else:
                async with conn.transaction():
                    await _copy(conn, batch.rows)
                    for c in batch.others:
                        sql, args = pg_sql.statement(c)
                        await conn.execute(sql, *args)
        self._ledger.committed(batch)

    async def compact(self, limit: int) -> int:
        chunk = self._ledger.chunk(self.clock() - self.keep_history_s, limit)
        if chunk is None:
            return 0
        whole = [i for first, last in chunk.runs for i in range(first, last + 1)]
        try:
            async with self._link.session() as conn:
                await conn.execute(pg_sql.COMPACT, chunk.max_id, whole, chunk.keep_published)
        except BaseException:
            self._ledger.restore(chunk)  # its rows are all still there: tried again later
            raise
        async with self._link.session() as conn:
            self._log_bytes = await conn.fetchval(pg_sql.LOG_BYTES)
        return chunk.count

    async def read_bodies(self, ids: Sequence[int]) -> dict[int, bytes]:
        if len(ids) > MAX_BODY_READ:
            raise ValueError(f"at most {MAX_BODY_READ} bodies per read, got {len(ids)}")
        if not ids:
            return {}
        async with self._link.session() as conn:
            records = await conn.fetch(pg_sql.READ_BODIES, list(ids))
        return {msg_id: body for msg_id, body in records if body is not None}

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        async with self._link.session() as conn:
            records = await conn.fetch(pg_sql.HISTORY, msg_id)
        return history(records, msg_id)

    async def close(self) -> None:
        await self._link.close()


async def _read(conn: asyncpg.Connection, sql: str,
                fold: Callable[[list[Any]], None]) -> None:
    """Hand the rows of `sql` to `fold` in chunks: a million rows fetched at once would double
    the peak memory."""
    async with conn.transaction():  # a cursor lives in a transaction
        cursor = await conn.cursor(sql)
        while chunk := await cursor.fetch(RECOVERY_CHUNK_ROWS):
            fold(chunk)


async def _copy(conn: asyncpg.Connection, rows: list[Values]) -> None:
    if rows:
        await conn.copy_records_to_table("log", schema_name="mq", columns=pg_sql.COPY_COLUMNS,
                                         records=pg_sql.records(rows))
