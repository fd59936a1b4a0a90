"""Value types of the queue model. What happens to them is in events.py."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from mq.limits import MAX_PRIORITY


class State(Enum):
    READY = "ready"
    DELAYED = "delayed"
    LEASED = "leased"


_ID_BITS = 44  # ids below 2**44 (17.6 trillion): room for the priority above them


def id_of(rank_: int) -> int:
    return rank_ & ((1 << _ID_BITS) - 1)


@dataclass(slots=True)
class DeadLetter:
    """Why a message was moved to a dead-letter queue, and from where."""

    origin: str
    reason: str
    at: float


@dataclass(slots=True, eq=False)
class Message:
    """One message and where it is in its life. Mutable: the core moves it between states."""

    id: int
    queue: str
    body: bytes
    key: str | None
    published_at: float
    deliveries: int = 0
    state: State = State.READY
    ready_at: float = 0.0  # when DELAYED: when it becomes ready (Unix s)
    holder: str | None = None  # when LEASED: who holds the lease
    deadline: float = 0.0  # when LEASED: when the lease ends (monotonic s)
    deaths: int = 0  # how many holders died while leasing it
    priority: int = 0  # 0..MAX_PRIORITY, higher first
    expires_at: float | None = None  # per-message TTL: never delivered after this (Unix s)
    dedup_id: str | None = None
    last_error: str | None = None  # from the last NACK that gave one
    dead: DeadLetter | None = None  # set while it sits in a dead-letter queue
    delivery_base: int = 0  # deliveries before the last redrive: max_deliveries counts from here

    @property
    def rank(self) -> int:
        """Heap order as one int: higher priority first, then lower id (FIFO within a level)."""
        return ((MAX_PRIORITY - self.priority) << _ID_BITS) | self.id


@dataclass(frozen=True, slots=True)
class QueueSettings:
    retention_s: float
    lease_s: float
    max_deliveries: int = 0  # 0: unlimited; else dead-letter a message after that many
    dead_letter: str | None = None  # where; None: "<queue>.dlq"
    dedup_window_s: float = 300.0  # a dedup id is remembered this long after its publish

    def dead_letter_for(self, queue: str) -> str:
        return self.dead_letter or f"{queue}{DLQ_SUFFIX}"


DLQ_SUFFIX = ".dlq"


# What the broker hands out. NamedTuples: one is made for every publish and every delivery.


class Published(NamedTuple):
    """The answer to a publish: the message's id, or the earlier message's for a duplicate."""

    msg_id: int
    duplicate: bool  # True: deduplicated, nothing was stored


class Delivery(NamedTuple):
    """One message leased to a holder. Its receipt is `msg_id.delivery`."""

    msg_id: int
    delivery: int  # how many times it was leased, this time included (1 the first time)
    queue: str
    body: bytes
    key: str | None
    published_at: float  # Unix s
    priority: int


class Joined(NamedTuple):
    """A consumer's place in a group, as it stands after it joined."""

    group: str
    members: int
