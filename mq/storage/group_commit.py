"""Group commit: the changes of every request that arrives while a transaction is being written
go together into the next one, so the cost of a commit (an fsync in `full` mode) is shared.

Batches are numbered. `submit` returns the number of the batch the changes will be committed in;
after each commit `on_commit(number)` is called, and the caller releases the replies that waited
for that batch or an earlier one.

A write that fails (a full disk, a read-only file, an I/O error, a lost database connection:
`StoreUnavailable`) is not lost and does not stop the broker: the batch stays first in line and
is written again every `retry_s` until it succeeds, with every batch queued behind it merged
into it so the log keeps its order. `on_failure(first, failure)` says that batches from `first`
on are not committed for now (the merged batch is committed as `first` once it can be, and
numbering goes on from there), so the caller can answer their requests with an error instead
of a confirmation; `failing` says the store cannot be written, so the caller refuses new writes
until it can again.

A batch the database refuses for what it holds (`StoreRejected`: a data or integrity error)
would fail forever: it is logged, dropped and counted as done, `on_rejected(number)` says so
(its requests get an error), and the batches behind it go on. The core's memory still holds
its changes until a restart.

A batch is closed to new changes once it holds `max_changes` (the submission that crosses the
line stays whole: it is one round's work), so while one commit is being written the next ones
queue up in bounded batches, and a reply waits for the commit of its own changes, not for
everything a fast producer sent since.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mq.core.events import Change
from mq.storage.base import Fenced, Store, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)


# Upper bounds of the histogram buckets (Prometheus style: a value counts in every bucket whose
# bound is at least the value; one more bucket holds what is above the last bound).
COMMIT_SECONDS_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                         2.5)
COMMIT_CHANGES_BOUNDS = (1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000)


@dataclass(slots=True)
class Buckets:
    """A histogram as counts per bucket: one bisect and two additions per value."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, the last one above all bounds
    total: float = 0.0  # sum of the values

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


@dataclass(slots=True)
class CommitStats:
    commits: int = 0
    committed_changes: int = 0
    compacted: int = 0
    failed_writes: int = 0
    rejected_batches: int = 0  # refused by the database for their content, never written
    seconds: Buckets = field(default_factory=lambda: Buckets(COMMIT_SECONDS_BOUNDS))
    changes: Buckets = field(default_factory=lambda: Buckets(COMMIT_CHANGES_BOUNDS))


@dataclass(frozen=True, slots=True)
class StoreFailure:
    """Why the log cannot be written now, in words for the clients whose writes it refuses."""

    full: bool  # the disk (or the database's size limit) is full; else unavailable
    reason: str
    lost: frozenset[int] = frozenset()  # clustered: fenced out of these slots (TRYAGAIN)

    @classmethod
    def of(cls, error: Exception) -> StoreFailure:
        full = (getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                or (isinstance(error, StoreUnavailable) and error.full))
        return cls(full, str(error) or type(error).__name__)


def _nothing_failed(first: int, failure: StoreFailure) -> None:
    pass


def _nothing_rejected(number: int) -> None:
    pass


class GroupCommit:
    def __init__(self, store: Store, on_commit: Callable[[int], None],
                 compact_chunk: int = 2_000, compact_every: int = 20,
                 max_changes: int = 20_000,
                 on_failure: Callable[[int, StoreFailure], None] = _nothing_failed,
                 retry_s: float = 0.5,
                 on_rejected: Callable[[int], None] = _nothing_rejected) -> None:
        self.store = store
        self.on_commit = on_commit
        self.on_failure = on_failure
        self.on_rejected = on_rejected
        self.retry_s = retry_s
        self.failing: StoreFailure | None = None
        self.compact_chunk = compact_chunk
        self.compact_every = compact_every  # under steady load, compact once per this many commits
        self.max_changes = max_changes
        self._batches: deque[list[Change]] = deque()  # not yet being written, oldest first
        self._last_number = 0  # the number of the newest batch in _batches (or written)
        self.committed = 0  # number of the last committed batch
        self._wake = asyncio.Event()
        self._closing = False
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []  # (batch, resolved once in)
        self.stats = CommitStats()

    @property
    def last_submitted(self) -> int:
        """The number of the newest batch holding changes (committed or not)."""
        return self._last_number

    async def wait_committed(self, number: int) -> None:
        """Return once batch `number` (and so every one before it) is committed."""
        if self.committed >= number:
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((number, done))
        await done

    def _release_waiting(self, number: int) -> None:
        # Numbers above the last one were merged into a failed batch that is now committed.
        still = []
        for waited, done in self._waiting:
            if waited <= number or waited > self._last_number:
                if not done.done():
                    done.set_result(None)
            else:
                still.append((waited, done))
        self._waiting = still

    def submit(self, changes: list[Change]) -> int:
        if changes:
            batches = self._batches
            if not batches or len(batches[-1]) >= self.max_changes:
                batches.append([])
                self._last_number += 1
            batches[-1].extend(changes)
            self._wake.set()
        return self._last_number

    async def run(self) -> None:
        """Write batches until `close` is called and the last batch is committed.

        Compaction runs in the gaps: whenever there is nothing to commit, and under steady
        load once every `compact_every` commits, one bounded chunk at a time."""
        while True:
            if not self._batches:
                if self._closing:
                    return
                delay = self.store.next_compaction_in()
                if delay == 0.0 and await self._compact():
                    continue
                await self._idle(delay)
            self._wake.clear()
            if not self._batches:
                continue
            # Batch numbers are consecutive: the first one queued is the oldest not written.
            number = self._last_number - len(self._batches) + 1
            batch = self._batches.popleft()
            started = time.perf_counter()
            if not await self._write(batch, number):
                continue
            self.committed = number
            stats = self.stats
            stats.commits += 1
            stats.committed_changes += len(batch)
            stats.seconds.add(time.perf_counter() - started)
            stats.changes.add(len(batch))
            if self._waiting:
                self._release_waiting(number)
            self.on_commit(number)
            if number % self.compact_every == 0:
                await self._compact()

    async def _write(self, batch: list[Change], number: int) -> bool:
        """Write one batch; on failure put it back first in line, with everything queued
        behind it merged into it, and wait before the retry."""
        try:
            await self.store.write(batch)
        except Fenced as e:
            # Not a failing store: the batch goes again at once, and the store leaves out the
            # slots it lost. Nothing waiting for it may be confirmed, so it is refused.
            self.stats.failed_writes += 1
            self._requeue(batch, number)
            self.on_failure(number, StoreFailure(False, str(e), e.lost))
            return False
        except StoreRejected:
            self._reject(batch, number)
            return False
        except (sqlite3.Error, OSError, StoreUnavailable) as e:
            failure = StoreFailure.of(e)
            if self.failing is None:
                log.error("cannot write the log (%s): writes are refused and retried every "
                          "%.1f s until it works again", failure.reason, self.retry_s)
            self.failing = failure
            self.stats.failed_writes += 1
            self._requeue(batch, number)
            self.on_failure(number, failure)
            await asyncio.sleep(self.retry_s)
            return False
        if self.failing is not None:
            log.warning("the log is writable again (%d changes written that had waited)",
                        len(batch))
            self.failing = None
        return True

    def _requeue(self, batch: list[Change], number: int) -> None:
        merged = batch + [change for queued in self._batches for change in queued]
        self._batches = deque([merged])
        self._last_number = number  # one batch now, committed as the first failed number

    def _reject(self, batch: list[Change], number: int) -> None:
        """The database refused batch `number` for its content: it is dropped, not retried,
        and counts as done, so the batches behind it are written and confirmed as usual."""
        log.exception("the log refused batch %d (%d changes) for its content: its requests are "
                      "answered INTERNAL and it is not written again", number, len(batch))
        self.failing = None  # the database answered: it is there
        self.stats.rejected_batches += 1
        self.committed = number
        if self._waiting:
            self._release_waiting(number)
        self.on_rejected(number)

    async def _idle(self, delay: float | None) -> None:
        """Wait for work, or until the next finished message may be compacted (`delay` s)."""
        if delay is None:
            await self._wake.wait()
            return
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for can swallow a cancellation
        # that arrives as its timeout fires (CPython gh-86296), and a task group cancelling
        # this task would then wait for it forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(delay, 0.05)):
                await self._wake.wait()

    async def _compact(self) -> int:
        try:
            done = await self.store.compact(self.compact_chunk)
        except (sqlite3.Error, OSError, StoreUnavailable, StoreRejected) as e:
            log.warning("compaction failed (%s); it is tried again later", e)
            return 0
        self.stats.compacted += done
        return done

    def close(self) -> None:
        """Ask `run` to return once everything submitted so far is committed."""
        self._closing = True
        self._wake.set()
