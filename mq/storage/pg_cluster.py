"""The Postgres log as one clustered broker sees it: a share of the slots, fenced by epoch.

Several brokers write one database (`mq serve --cluster ...`); each owns some of the 1,024
slots (mq/cluster/slots.py), and the slot map in etcd says which, each slot with an epoch that
only grows. The database has the last word, so that no timing can make two brokers commit for
one slot:

- `take(slot, epoch)` writes (slot, epoch, owner) into `slot_owner` unless a newer epoch is
  there. It waits for a commit of the old owner that is in flight (FENCE_CHECK locks the row),
  and once it is done the old owner can commit nothing more for that slot.
- `write` commits a batch only if every slot it touches is still held at this store's epoch,
  checked in the batch's own transaction (FENCE_CHECK, FOR SHARE). If one was lost, nothing is
  written and `Fenced` names the lost slots: group commit answers the batch's requests with
  TRYAGAIN, never with a confirmation, and writes the batch again without those slots' changes
  (a store writes only the slots it holds). So does a batch holding changes of a slot this
  broker released (`release`: the map moved it) after they were made.
- `load(slot)` folds that slot's rows (rows.py Fold, with the recovery queries narrowed to the
  slot) into what the core restores. A message leased when the previous owner stopped comes
  back leased, to the same holder, until its lease ends (a clustered core logs each lease's
  end, and each touch's, on its LEASED row) plus TAKEOVER_SLACK_S against clock skew: its
  holder's receipt still works at the new owner (the SDK resumes its session there by
  token), and nobody else gets it meanwhile.

How long the database has left this store's work without a reply is kept in `watch`
(mq/cluster/store_watch.py): the broker gives up its slots when that grows too long. Its
sessions ask the server to drop them when this broker stops answering TCP keep-alives or
leaves a transaction idle (SESSION_SETTINGS), so a transaction a cut-off or paused broker left
open does not hold its slots' fence rows (and the takeover that waits for them) until the
network heals or the broker wakes; a takeover waits for them at most TAKE_WAIT meanwhile.

Ids: a clustered core makes ids that carry their slot; the log's `slot` column is computed
from them (pg_sql.py format 2), so rows carry their slot without the broker sending it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import asyncpg

from mq.cluster.slots import SLOT_MASK, slot_of
from mq.cluster.store_watch import StoreWatch
from mq.core.events import Appended, Bound, Change, Declared, Event, Purged
from mq.storage import pg_sql
from mq.storage.base import Fenced, Recovered, StoreRejected, StoreUnavailable
from mq.storage.pg_link import PgLink
from mq.storage.postgres import RECOVERY_CHUNK_ROWS, PostgresStore, _copy
from mq.storage.rows import Fold
from mq.storage.sqlite import RECOVER_EVENTS, RECOVER_PLAIN, RECOVER_PUBLISHED

log = logging.getLogger(__name__)

TAKEOVER_SLACK_S = 1.0  # against clock skew between brokers (lease times are wall clock)
# How long a takeover waits for the old owner's commit in flight (FENCE_CHECK locks the row):
# one left open by a broker cut off from the database would otherwise hold this broker's only
# connection, and every commit behind it, until the server drops that broker (SESSION_SETTINGS).
TAKE_WAIT = "SET LOCAL lock_timeout = '1s'"
RELEASED = 0  # the epoch of a slot released while a batch waited: no etcd revision is 0
# The server ends a session whose broker stopped acknowledging for about 4 s (idle 2 s, then
# 2 probes 1 s apart), or left data unacknowledged for 4 s (cut off), or left a transaction
# idle for 3 s (paused mid-commit): that transaction, and the fence rows it locks, go with it.
SESSION_SETTINGS = {"tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1",
                    "tcp_keepalives_count": "2", "tcp_user_timeout": "4000",
                    "idle_in_transaction_session_timeout": "3000"}


class SlotLost(Exception):
    """`take` found the slot held at a newer epoch: the map this broker read is stale."""


def slot_of_change(change: Change) -> int:
    if isinstance(change, Appended):
        return change.message.id & SLOT_MASK
    if isinstance(change, (Declared, Purged, Bound)):
        return slot_of(change.queue)  # a bound topic shares its queue's slot (CROSSSLOT)
    return change.msg_id & SLOT_MASK


class ClusteredPostgresStore(PostgresStore):
    def __init__(self, url: str, node: str, sync: str = "full", keep_history_s: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, sync, keep_history_s, clock)
        self.node = node
        self._link = PgLink(url, sync, exclusive=False, server_settings=SESSION_SETTINGS)
        self.watch = StoreWatch(time.monotonic)
        self.epochs: dict[int, int] = {}  # slot -> the epoch this broker holds it at
        self._refused: set[int] = set()  # slots let go of whose waiting changes were refused

    async def open(self) -> Recovered:
        """Connect and bring the tables up to date; no slot is held yet (`take`, `load`)."""
        await self._link.open()
        try:
            async with self._link.session() as conn:
                await self._upgrade(conn)
                await conn.execute(pg_sql.SLOT_INDEX)
                self._log_bytes = await conn.fetchval(pg_sql.LOG_BYTES)
        except BaseException:
            await self.close()
            raise
        return Recovered()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[asyncpg.Connection]:
        """The link's session, its wait for a reply noted in `watch`."""
        self.watch.asking()
        answered = False
        try:
            async with self._link.session() as conn:
                yield conn
            answered = True
        except (Fenced, StoreRejected):
            answered = True
            raise
        except StoreUnavailable as e:
            answered = _server_replied(e.__cause__)
            raise
        finally:
            self.watch.done(answered)

    async def ping(self) -> None:
        """One round trip to the database; `StoreUnavailable` if it does not answer."""
        async with self._session() as conn:
            await conn.fetchval("SELECT 1")

    def abandon(self) -> None:
        """Give up the work waiting on an unanswering database: it fails now (group commit
        answers its requests STORE_UNAVAILABLE and retries without the slots released)."""
        self._link.abandon()

    async def take(self, slot: int, epoch: int) -> None:
        """Fence `slot` at `epoch` for this broker; `SlotLost` if a newer epoch holds it, and
        `StoreUnavailable` if a commit of the old owner holds its row longer than TAKE_WAIT
        (the loader tries again at the next map read)."""
        async with self._session() as conn, conn.transaction():
            await conn.execute(TAKE_WAIT)
            if await conn.fetchval(pg_sql.TAKE_SLOT, slot, epoch, self.node) is None:
                raise SlotLost(f"slot {slot} is held at an epoch newer than {epoch}")
        self.epochs[slot] = epoch
        self._refused.discard(slot)

    def release(self, slot: int) -> None:
        """Stop writing `slot` (it moved away); its rows stay for the next owner."""
        self.epochs.pop(slot, None)

    async def load(self, slot: int, default_lease_s: float) -> Recovered:
        """The state of `slot`, folded from its rows, with the leases held at the takeover
        (`Recovered.leases`). A lease logged without its end lasts its queue's lease_s
        (`default_lease_s` for a queue never declared)."""
        async with self._session() as conn:
            settings = dict(pg_sql.settings_of(r) for r in await conn.fetch(pg_sql.SETTINGS)
                            if slot_of(r[0]) == slot)
            bindings = [(r[0], r[1]) for r in await conn.fetch(pg_sql.BINDINGS)
                        if slot_of(r[1]) == slot]
            fold = Fold()
            await self._read_slot(conn, pg_sql.of_slot(RECOVER_PLAIN), slot, fold.published_plain)
            await self._read_slot(conn, pg_sql.of_slot(RECOVER_PUBLISHED), slot, fold.published)
            await self._read_slot(conn, pg_sql.of_slot(RECOVER_EVENTS), slot, fold.events)
            last = await conn.fetch(pg_sql.LAST_EVENTS, slot)
            max_id_ever = await conn.fetchval(pg_sql.MAX_ID_EVER) or 0
        leases: list[tuple[int, str, float]] = []
        for msg_id, kind, at, holder, until in last:
            msg = fold.messages.get(msg_id)
            if kind == int(Event.LEASED) and msg is not None and msg_id not in fold.finished:
                if until is None:  # leased before this log knew lease ends: its queue's lease
                    declared = settings.get(msg.queue)
                    until = at + (default_lease_s if declared is None else declared.lease_s)
                leases.append((msg_id, holder, until + TAKEOVER_SLACK_S))
        recovered = self._ledger.recovered(fold, settings, bindings, max_id_ever, adding=True)
        recovered.leases = leases
        log.info("slot %d loaded: %d messages (%d leased when its owner stopped)", slot,
                 len(recovered.messages) + sum(map(len, recovered.plain.values())),
                 len(leases))
        return recovered

    async def _read_slot(self, conn: asyncpg.Connection, sql: str, slot: int,
                         fold: Callable[[list[tuple[object, ...]]], None]) -> None:
        """Fold the rows of `sql` for `slot` chunk by chunk, each chunk a reply `watch` hears
        (a slot of many rows takes a while to read, and the database answers all along)."""
        async with conn.transaction():
            cursor = await conn.cursor(sql, slot)
            while chunk := await cursor.fetch(RECOVERY_CHUNK_ROWS):
                self.watch.heard()
                fold(chunk)

    async def write(self, changes: Sequence[Change]) -> None:
        epochs = self.epochs
        let_go = {slot_of_change(c) for c in changes} - epochs.keys() - self._refused
        if let_go:
            # Changes of a slot released since they were made (it moved while they waited for
            # this commit): they are not written, so what waits for them must not be confirmed.
            self._refused |= let_go
            raise Fenced(frozenset(let_go))
        mine = [c for c in changes if slot_of_change(c) in epochs]
        batch = self._ledger.batch(mine)
        slots = sorted({slot_of_change(c) for c in mine})
        if not slots:
            return
        async with self._session() as conn, conn.transaction():
            # A slot released while this waited for the connection fails the check.
            held = {r[0] for r in await conn.fetch(pg_sql.FENCE_CHECK, slots,
                                                   [epochs.get(s, RELEASED) for s in slots])}
            lost = frozenset(slots) - held
            if lost:
                for s in lost:
                    epochs.pop(s, None)
                self._refused |= lost
                raise Fenced(lost)  # leaving the transaction block rolls it back
            await _copy(conn, batch.rows)
            for c in batch.others:
                sql, args = pg_sql.statement(c)
                await conn.execute(sql, *args)
        self._ledger.committed(batch)


def _server_replied(error: BaseException | None) -> bool:
    """Whether `error` is one the server sent (a reply), not a connection lost or not made
    (asyncpg counts those as PostgresErrors too)."""
    return (isinstance(error, asyncpg.PostgresError)
            and not isinstance(error, asyncpg.exceptions.PostgresConnectionError))
