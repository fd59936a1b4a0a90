"""Group commit: the changes of every request that arrives while a transaction is being written
go together into the next one, so the cost of a commit (an fsync in `full` mode) is shared.

Batches are numbered. `submit` returns the number of the batch the changes will be committed in;
after each commit `on_commit(number)` is called, and the caller releases the replies that waited
for that batch or an earlier one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mq.core.events import Change
from mq.storage.base import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CommitStats:
    commits: int = 0
    committed_changes: int = 0
    compacted: int = 0


class GroupCommit:
    def __init__(self, store: Store, on_commit: Callable[[int], None],
                 compact_chunk: int = 2_000, compact_every: int = 20) -> None:
        self.store = store
        self.on_commit = on_commit
        self.compact_chunk = compact_chunk
        self.compact_every = compact_every  # under steady load, compact once per this many commits
        self._open: list[Change] = []
        self._open_number = 1
        self.committed = 0  # number of the last committed batch
        self._wake = asyncio.Event()
        self._closing = False
        self.stats = CommitStats()

    @property
    def last_submitted(self) -> int:
        """The number of the newest batch holding changes (committed or not)."""
        return self._open_number if self._open else self._open_number - 1

    def submit(self, changes: list[Change]) -> int:
        if changes:
            self._open.extend(changes)
            self._wake.set()
        return self.last_submitted

    async def run(self) -> None:
        """Write batches until `close` is called and the last batch is committed.

        Compaction runs in the gaps: whenever there is nothing to commit, and under steady
        load once every `compact_every` commits, one bounded chunk at a time."""
        while True:
            if not self._open:
                if self._closing:
                    return
                delay = self.store.next_compaction_in()
                if delay == 0.0 and await self._compact():
                    continue
                await self._idle(delay)
            self._wake.clear()
            if not self._open:
                continue
            batch, number = self._open, self._open_number
            self._open, self._open_number = [], number + 1
            await self.store.write(batch)
            self.committed = number
            self.stats.commits += 1
            self.stats.committed_changes += len(batch)
            self.on_commit(number)
            if number % self.compact_every == 0:
                await self._compact()

    async def _idle(self, delay: float | None) -> None:
        """Wait for work, or until the next finished message may be compacted (`delay` s)."""
        if delay is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(delay, 0.05))

    async def _compact(self) -> int:
        done = await self.store.compact(self.compact_chunk)
        self.stats.compacted += done
        return done

    def close(self) -> None:
        """Ask `run` to return once everything submitted so far is committed."""
        self._closing = True
        self._wake.set()
