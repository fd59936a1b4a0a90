"""The interface between the broker and its durable log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mq.core.backlog import Backlog
from mq.core.events import Change
from mq.core.model import Message, QueueSettings


@dataclass(slots=True)
class Recovered:
    """The state rebuilt from the log at open: what the core needs to start serving."""

    settings: dict[str, QueueSettings] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    next_id: int = 1
    bindings: list[tuple[str, str]] = field(default_factory=list)  # (topic, queue)
    finished_dedup: list[Message] = field(default_factory=list)  # finished, with a dedup id
    # queue -> its plain messages never touched since their publish (not in `messages`)
    plain: dict[str, Backlog] = field(default_factory=dict)
    leases: list[tuple[int, str, float]] = field(default_factory=list)  # clustered: taken over


MAX_BODY_READ = 1_000  # ids per read_bodies call


class StoreUnavailable(Exception):
    """The log cannot be written (or read) now: its database is unreachable, or its disk is full.
    The write is retried; meanwhile requests that write are refused (STORE_UNAVAILABLE, or
    STORE_FULL when `full`)."""

    def __init__(self, reason: str, full: bool = False) -> None:
        super().__init__(reason)
        self.full = full


class Fenced(StoreUnavailable):
    """Clustered mode: a batch touched slots this broker no longer holds at its epoch, so
    nothing of it was written (pg_cluster.py). Its requests are answered TRYAGAIN, and the
    batch is written again without those slots' changes."""

    def __init__(self, lost: frozenset[int]) -> None:
        super().__init__(f"slots {sorted(lost)[:8]} moved to another broker")
        self.lost = lost


class StoreRejected(Exception):
    """The database refused one batch for what it holds (a data or integrity error), not for
    being away: written again, it would fail again. Group commit drops it and goes on; its
    requests are answered INTERNAL."""


class StoreRefused(Exception):
    """The store will not open this database: another broker holds it, or it is of a format
    this mq does not know. The message says what to do."""


class Store(Protocol):
    async def open(self) -> Recovered:
        """Open (creating if needed) and rebuild the state. Leases are void: leased -> ready.
        Bodies of plain messages beyond the store's `max_body_memory_bytes` (in log order)
        are recovered as their sizes (Message.body), kept in the log only."""
        ...

    async def write(self, changes: Sequence[Change]) -> None:
        """Record `changes` in one transaction; returns once it is committed."""
        ...

    @property
    def compaction_backlog(self) -> int:
        """Finished messages whose rows `compact` has not deleted yet."""
        ...

    @property
    def is_open(self) -> bool:
        """Between a successful `open` and `close`."""
        ...

    def log_bytes(self) -> int:
        """What the log takes on disk, as well as the store knows it without waiting."""
        ...

    def next_compaction_in(self) -> float | None:
        """Seconds until `compact` has something to do; None when nothing is finished."""
        ...

    async def compact(self, limit: int) -> int:
        """Delete up to `limit` finished (acked, dropped) messages; returns how many."""
        ...

    async def read_bodies(self, ids: Sequence[int]) -> dict[int, bytes]:
        """The bodies of the published messages `ids` (at most MAX_BODY_READ of them), read
        back from the log in one query, by id; a fan-out copy's is the body it shares. An id
        whose publish is not in the log (not committed yet, or compacted) is left out. For
        bodies the broker keeps in the log only, beyond its memory budget."""
        ...

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        """What the log still holds of one message, oldest first."""
        ...

    async def close(self) -> None: ...
