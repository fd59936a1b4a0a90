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


@dataclass(slots=True)
class Extra:
    """What only some messages have: made on first use, so the others do without."""

    deaths: int = 0  # how many holders died while leasing it
    expires_at: float | None = None  # per-message TTL: never delivered after this (Unix s)
    dedup_id: str | None = None
    last_error: str | None = None  # from the last NACK that gave one
    dead: DeadLetter | None = None  # set while it sits in a dead-letter queue
    delivery_base: int = 0  # deliveries before the last redrive: max_deliveries counts from here


Headers = dict[str, str]
"""A message's headers. Never changed once published: fan-out copies, deliveries and the log
share the one map the publish gave."""


def headers_size(headers: Headers) -> int:
    """About what `headers` add to a reply, in bytes: their text and a little per entry."""
    return sum(len(name) + len(value) + 4 for name, value in headers.items())


@dataclass(slots=True)
class WithHeaders(Extra):
    """The Extra of a message published with headers. A subclass rather than a slot of Extra,
    so that no other message pays for it: most have no Extra, and those that do (a TTL, a
    dedup id, a nack error) keep a slot fewer."""

    headers: Headers | None = None


class Message:
    """One message and where it is in its life. Mutable: the core moves it between states.

    Memory. A broker holds millions of these, so one is a single object of ten slots (112
    bytes) beside its body and publish time: a delayed message's ready_at and a leased one's
    deadline share `until` (a message is never both); what few messages have (a TTL, a dedup
    id, deaths, a nack error, a dead-letter record, headers) lives in an `Extra` made on first
    use (headers in its subclass `WithHeaders`, given at publish); who holds a lease is kept by
    the queue (`Queue.holder_of`), for leased messages only. Those fields read and write like
    plain ones.

    `body` is the body, or an int: its size, when the body is kept in the log only (beyond the
    broker's memory budget for bodies, `max_body_memory_bytes`); the server reads it back
    before it hands the message out (`Broker.fill_bodies`)."""

    __slots__ = (
        "body",
        "deliveries",
        "extra",
        "id",
        "key",
        "priority",
        "published_at",
        "queue",
        "state",
        "until",
    )

    def __init__(self, id: int, queue: str, body: bytes | int, key: str | None,
                 published_at: float,
                 deliveries: int = 0, state: State = State.READY, ready_at: float = 0.0,
                 priority: int = 0, expires_at: float | None = None,
                 dedup_id: str | None = None, delivery_base: int = 0,
                 headers: Headers | None = None) -> None:
        self.id = id
        self.queue = queue
        self.body = body
        self.key = key
        self.published_at = published_at  # Unix s
        self.state = state
        self.priority = priority  # 0..MAX_PRIORITY, higher first
        self.deliveries = deliveries
        self.until = ready_at  # DELAYED: ready_at (Unix s); LEASED: deadline (monotonic s)
        self.extra: Extra | None = None
        if headers:  # set here only: a message's headers never change
            self.extra = WithHeaders(expires_at=expires_at, dedup_id=dedup_id,
                                     delivery_base=delivery_base, headers=headers)
        elif expires_at is not None or dedup_id is not None or delivery_base:
            self.extra = Extra(expires_at=expires_at, dedup_id=dedup_id,
                               delivery_base=delivery_base)

    def __repr__(self) -> str:
        return (f"Message({self.id}, {self.queue!r}, {self.state.value}, "
                f"deliveries={self.deliveries})")

    @property
    def rank(self) -> int:
        """Heap order as one int: higher priority first, then lower id (FIFO within a level)."""
        return ((MAX_PRIORITY - self.priority) << _ID_BITS) | self.id

    def _more(self) -> Extra:
        extra = self.extra
        if extra is None:
            extra = self.extra = Extra()
        return extra

    # when DELAYED: when it becomes ready (Unix s); when LEASED: when the lease ends (monotonic s)
    @property
    def ready_at(self) -> float:
        return self.until

    @ready_at.setter
    def ready_at(self, value: float) -> None:
        self.until = value

    @property
    def deadline(self) -> float:
        return self.until

    @deadline.setter
    def deadline(self, value: float) -> None:
        self.until = value

    @property
    def deaths(self) -> int:
        return 0 if self.extra is None else self.extra.deaths

    @deaths.setter
    def deaths(self, value: int) -> None:
        self._more().deaths = value

    @property
    def expires_at(self) -> float | None:
        return None if self.extra is None else self.extra.expires_at

    @property
    def headers(self) -> Headers | None:
        extra = self.extra
        return extra.headers if type(extra) is WithHeaders else None

    @property
    def dedup_id(self) -> str | None:
        return None if self.extra is None else self.extra.dedup_id

    @property
    def last_error(self) -> str | None:
        return None if self.extra is None else self.extra.last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._more().last_error = value

    @property
    def dead(self) -> DeadLetter | None:
        return None if self.extra is None else self.extra.dead

    @dead.setter
    def dead(self, value: DeadLetter | None) -> None:
        if value is not None or self.extra is not None:
            self._more().dead = value

    @property
    def delivery_base(self) -> int:
        return 0 if self.extra is None else self.extra.delivery_base

    @delivery_base.setter
    def delivery_base(self, value: int) -> None:
        if value or self.extra is not None:
            self._more().delivery_base = value


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
    headers: Headers | None = None


class Joined(NamedTuple):
    """A consumer's place in a group, as it stands after it joined."""

    group: str
    members: int
