"""Finished messages (acked or removed) whose rows wait in the log for `keep_history_s`, so that
HISTORY can still show their whole life, before compaction deletes them.

Nothing of a finished message stays in memory but its id: ids are kept in arrays of machine
integers, one array per stretch of BUCKET_S seconds of finishing, under the latest finishing
time in it. So a message is compacted at most BUCKET_S seconds later than its own time would
allow, never earlier, and a busy broker that keeps a minute of history holds 8 bytes per
finished message rather than a tuple, a float and an int (168 bytes).
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable

BUCKET_S = 1.0  # finishing times this close share one bucket


class Finished:
    def __init__(self) -> None:
        self._buckets: deque[tuple[float, array[int]]] = deque()  # (latest finish, ids)
        self._started = 0.0  # earliest finish in the last bucket
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, at: float, ids: Iterable[int]) -> None:
        """Messages finished at `at` (Unix s) or before, committed: they may be compacted."""
        buckets = self._buckets
        if buckets and at - self._started < BUCKET_S:
            latest, bucket = buckets[-1]
            before = len(bucket)
            bucket.extend(ids)
            if at > latest:
                buckets[-1] = (at, bucket)
        else:
            bucket, before = array("q", ids), 0
            buckets.append((at, bucket))
            self._started = at
        self._count += len(bucket) - before

    def next_due(self) -> float | None:
        """When the oldest bucket finished (Unix s), or None."""
        return self._buckets[0][0] if self._buckets else None

    def put_back(self, at: float, ids: list[int]) -> None:
        """Undo a `take` of `ids` (oldest first) whose horizon was `at`: they are the oldest
        again, due at `at`."""
        if ids:
            self._buckets.appendleft((at, array("q", ids)))
            self._count += len(ids)

    def take(self, horizon: float, limit: int) -> list[int]:
        """Up to `limit` ids of messages finished at `horizon` or before, oldest first; they
        are forgotten here."""
        out: list[int] = []
        buckets = self._buckets
        while buckets and len(out) < limit and buckets[0][0] <= horizon:
            _, bucket = buckets[0]
            n = limit - len(out)
            out.extend(bucket[:n])
            del bucket[:n]
            if not bucket:
                buckets.popleft()
        self._count -= len(out)
        return out
