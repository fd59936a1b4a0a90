"""What every store keeps beside its log, with no SQL: which changes of a batch are log rows,
which finished messages wait for compaction, and which fan-out copies still need the row that
holds their body. sqlite.py and postgres.py both write through it, so the two logs agree on
what a batch, a recovery and a compaction chunk are; only the statements differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import cast

from mq.core.events import Acked, Appended, Change, Removed
from mq.core.model import QueueSettings
from mq.storage.base import Recovered
from mq.storage.finished import Finished
from mq.storage.rows import ENCODERS, Fold, Values, runs_of


@dataclass(slots=True)
class Batch:
    """One `write`'s changes, sorted: rows of the log (rows.py values, in order) and the
    changes that are not rows (settings, bindings: tables of their own)."""

    rows: list[Values] = field(default_factory=list)
    others: list[Change] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)  # acked or removed
    finished_at: float = 0.0  # the latest of their times
    copies: list[tuple[int, int]] = field(default_factory=list)  # (fan-out copy, body holder)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One compaction step: delete every row of `whole` (as runs of consecutive ids), and all
    but the published and final rows of `keep_published` (a live copy still reads its body);
    `max_id` is remembered so ids are never reused once their rows are gone."""

    runs: list[tuple[int, int]]
    keep_published: list[int]
    max_id: int
    count: int  # finished messages this chunk takes off the backlog
    undo: Undo  # how to put it back if its delete fails


@dataclass(frozen=True, slots=True)
class Undo:
    """What `Ledger.chunk` took off, so that `Ledger.restore` can put it back."""

    horizon: float
    taken: list[int]
    copies: list[tuple[int, int]]  # (fan-out copy, body holder) no longer counted
    kept_added: list[int]
    kept_removed: list[int]


class Ledger:
    def __init__(self, batch_rows: bool = False) -> None:
        """`batch_rows`: write runs of plain publishes, leases or acks as batch rows (rows.py,
        `runs_of`); otherwise every change is a row of its own."""
        self._batch_rows = batch_rows
        self.finished = Finished()  # acked or removed, rows kept for HISTORY until compacted
        self._body_of: dict[int, int] = {}  # fan-out copy -> the message whose row has the body
        self._dependents: Counter[int] = Counter()  # body holder -> copies not yet compacted
        self._kept: set[int] = set()  # finished holders kept for their dependents

    def batch(self, changes: Sequence[Change]) -> Batch:
        """Sort `changes` into a Batch; nothing is noted until `committed`."""
        b = Batch()
        rows, others, finished, copies = b.rows, b.others, b.finished, b.copies
        # By runs of one type (groupby reads the types in C): this runs for every change.
        for kind, group in groupby(changes, type):
            run = list(group)
            make = ENCODERS.get(kind)
            if make is None:
                others.extend(run)
                continue
            rows.extend(runs_of(kind, run) if self._batch_rows else map(make, run))
            if kind is Acked or kind is Removed:
                gone = cast(list[Acked | Removed], run)
                finished.extend(c.msg_id for c in gone)
                b.finished_at = max(b.finished_at, max(c.at for c in gone))
            elif kind is Appended:
                copies.extend((c.message.id, c.body_of) for c in cast(list[Appended], run)
                              if c.body_of is not None)
        return b

    def committed(self, b: Batch) -> None:
        """Once committed, never before (a failed write is written again): fan-out copies count
        against the row that holds their body, and finished messages may be compacted."""
        for msg_id, body_of in b.copies:
            self._body_of[msg_id] = body_of
            self._dependents[body_of] += 1
        if b.finished:
            self.finished.add(b.finished_at, b.finished)

    def recovered(self, fold: Fold, settings: dict[str, QueueSettings],
                  bindings: list[tuple[str, str]], max_id_ever: int,
                  adding: bool = False) -> Recovered:
        """Take over what `fold` found (the compaction backlog, the fan-out copies) and return
        the state the core starts from; `max_id_ever` is the highest id compaction deleted.
        `adding`: what `fold` found is one more part of the log (a slot), not all of it."""
        for at, msg_id in sorted((at, msg_id) for msg_id, at in fold.finished.items()):
            self.finished.add(at, (msg_id,))
        if adding:  # a clustered store folds one slot at a time, beside those it has
            self._body_of.update(fold.body_of)
            self._dependents.update(fold.body_of.values())
        else:
            self._body_of = fold.body_of
            self._dependents = Counter(fold.body_of.values())
        next_id = max(fold.max_id, max_id_ever) + 1
        return Recovered(settings, fold.live(), next_id, bindings, fold.finished_dedup(),
                         fold.plain())

    def chunk(self, horizon: float, limit: int) -> Chunk | None:
        """Up to `limit` messages finished at `horizon` (Unix s) or before, as one chunk to
        delete; None when none is due. They are off the backlog from here on."""
        taken = self.finished.take(horizon, limit)
        if not taken:
            return None
        whole: list[int] = []
        keep_published: list[int] = []
        undo = Undo(horizon, taken, [], [], [])
        for msg_id in taken:
            if self._dependents.get(msg_id):
                keep_published.append(msg_id)  # a live copy still reads its body
                if msg_id not in self._kept:
                    self._kept.add(msg_id)
                    undo.kept_added.append(msg_id)
            else:
                whole.append(msg_id)
            holder = self._body_of.pop(msg_id, None)
            if holder is not None:
                undo.copies.append((msg_id, holder))
                self._dependents[holder] -= 1
                if not self._dependents[holder]:
                    del self._dependents[holder]
                    if holder in self._kept:
                        self._kept.discard(holder)
                        undo.kept_removed.append(holder)
                        whole.append(holder)
        return Chunk(runs(whole), keep_published, max(taken), len(taken), undo)

    def restore(self, chunk: Chunk) -> None:
        """`chunk` was not deleted (its transaction failed): its messages go back on the
        backlog, due at once, as if `chunk` had never been taken."""
        undo = chunk.undo
        self.finished.put_back(undo.horizon, undo.taken)
        for msg_id, holder in undo.copies:
            self._body_of[msg_id] = holder
            self._dependents[holder] += 1
        self._kept.update(undo.kept_removed)
        self._kept.difference_update(undo.kept_added)


def runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted, distinct ids as (first, last) ranges of consecutive ids."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out
