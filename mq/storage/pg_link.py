"""The broker's connection to its Postgres database, and what happens when it is lost.

The connection that does all the work, one statement at a time, also holds the advisory lock
LOCK_KEY, for as long as it lives: a second broker on the same database finds the lock taken
and is refused at start (`StoreRefused`), as a second broker on an SQLite file is by its flock
(lock.py). Postgres lets go of the lock when that session ends, however the broker ends, so a
SIGKILLed broker leaves no stale lock. Holding it on the working session itself makes it a
fence: a session that lost the lock has ended, so nothing it sent can commit after another
broker took the lock (a lock on a connection of its own could be lost while the working one
still commits).

A lost connection (the server restarted, killed, unreachable) makes every use fail with
`StoreUnavailable` (group commit retries the write, the server refuses writes meanwhile). The
next use reconnects and takes the lock before anything else: no write goes out unless this
broker holds the lock again. If another broker took it in the meantime, this one stays
refused, saying so. Attempts are spaced by a backoff that doubles from MIN_BACKOFF_S to
MAX_BACKOFF_S, so a database that is down is not hammered, and one that is back is used again
within MAX_BACKOFF_S.

A clustered broker (`exclusive=False`) takes no lock: several brokers share the database, and
each commit is fenced by its slots' epochs instead (pg_cluster.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg

from mq.storage.base import StoreRefused, StoreRejected, StoreUnavailable
from mq.storage.pg_sql import LOCK_KEY
from mq.storage.urls import shown

CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 30.0  # a database that stops answering counts as lost after this
MIN_BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0
# What a lost or failing database raises; anything else is a bug and propagates. asyncpg's
# InternalClientError ("another operation is in progress") is a connection whose protocol state
# a server death left half-way: seen here when the server was killed during a COPY.
LOST = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
        OSError, TimeoutError)
# What the database says of a statement's data (classes 22 and 23 of SQLSTATE): no retry
# will write it, so it is not an outage.
REJECTED = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)
# sync mode -> synchronous_commit of the broker's sessions (protocol.md 5)
SYNCHRONOUS_COMMIT = {"full": "on", "normal": "off"}
HOLDER = ("SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l "
          "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
          "AND l.granted AND l.objid = $1 AND l.database = "
          "(SELECT oid FROM pg_database WHERE datname = current_database())")


class PgLink:
    def __init__(self, url: str, sync: str, exclusive: bool = True,
                 server_settings: Mapping[str, str] | None = None) -> None:
        """`server_settings`: more settings of the broker's sessions."""
        self.url = url
        self.exclusive = exclusive
        self.shown = shown(url)
        self._settings = {"search_path": "mq", "application_name": f"mq broker pid {os.getpid()}",
                          "synchronous_commit": SYNCHRONOUS_COMMIT[sync],
                          **(server_settings or {})}
        self._conn: asyncpg.Connection | None = None  # holds the lock when `exclusive`
        self._busy = asyncio.Lock()  # a connection runs one statement at a time
        self._backoff_s = MIN_BACKOFF_S
        self._next_try = 0.0  # monotonic s: no reconnect attempt before this
        self._why = ""  # the last failure, repeated while the backoff runs
        self._open = False  # between open() and close(): only then does it (re)connect

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        """Connect and take the lock; `StoreRefused` if another broker has it, and
        `StoreUnavailable` if the database cannot be reached."""
        try:
            self._conn = await self._locked_connection()
            self._open = True
        except LOST as e:
            raise StoreUnavailable(f"cannot reach the database: {_reason(e)}") from e

    @asynccontextmanager
    async def session(self) -> AsyncIterator[asyncpg.Connection]:
        """The working connection, reconnected if it was lost, for one piece of work; a lost
        or failing database surfaces as `StoreUnavailable`."""
        if not self._open:
            raise RuntimeError("store is not open")
        async with self._busy:
            conn = await self._connected()
            try:
                yield conn
            except REJECTED as e:
                raise StoreRejected(f"{self.shown}: {_reason(e)}") from e
            except LOST as e:
                if not isinstance(e, asyncpg.PostgresError):  # the connection itself is broken:
                    conn.terminate()  # the next piece of work reconnects
                    self._conn = None
                self._why = _reason(e)
                raise StoreUnavailable(f"{self.shown}: {self._why}",
                                       isinstance(e, asyncpg.DiskFullError)) from e

    def abandon(self) -> None:
        """Close the working connection now (the database stopped answering): work hanging on
        it fails at once as on a lost connection, not at the statement timeout; the next use
        reconnects."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _connected(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        now = time.monotonic()
        if now < self._next_try:
            raise StoreUnavailable(f"{self.shown}: {self._why} (reconnecting)")
        try:
            self._conn = conn = await self._locked_connection()
        except (*LOST, StoreRefused) as e:
            self._why = _reason(e)
            self._next_try = now + self._backoff_s
            self._backoff_s = min(2 * self._backoff_s, MAX_BACKOFF_S)
            raise StoreUnavailable(f"{self.shown}: {self._why} (reconnecting)") from e
        self._backoff_s = MIN_BACKOFF_S
        return conn

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S,
                                     command_timeout=STATEMENT_TIMEOUT_S,
                                     server_settings=self._settings)

    async def _locked_connection(self) -> asyncpg.Connection:
        """A new connection, holding the lock if this broker is to be the database's only one."""
        conn = await self._connect()
        try:
            if self.exclusive and not await conn.fetchval("SELECT pg_try_advisory_lock($1)",
                                                          LOCK_KEY):
                raise StoreRefused(await self._refusal(conn))
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _refusal(self, lock: asyncpg.Connection) -> str:
        holder = await lock.fetchrow(HOLDER, LOCK_KEY)
        who = ("unknown" if holder is None else
               f"{holder['application_name'] or 'no application name'}, Postgres backend pid "
               f"{holder['pid']}, from {holder['client_addr'] or 'a local socket'}")
        return (f"{self.shown} is in use by another mq broker ({who}), which holds its advisory "
                f"lock {LOCK_KEY:#x}; two brokers on one log would hand out the same ids. Stop "
                "that broker first, or give this one another --db")

    async def close(self) -> None:
        self._open = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT_S)
            except LOST:
                conn.terminate()


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
