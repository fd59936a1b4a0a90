"""What happens to a message, in one vocabulary, and the changes the core reports.

`Event` names each kind of event in a message's life once. Its value is the log code (the
integer in the log's `kind` column: a code is never renumbered or reused, new kinds only add
codes) and `wire` is the name HISTORY and MONITOR show. Storage, HISTORY and MONITOR all take
their names from here, so they cannot drift apart again.

The change values are what the core reports after each operation, in order, for storage to
record and for MONITOR to show. Each message change says which `Event` it is (`kind`);
`Declared`, `Purged` and `Bound` change queues and bindings, not a message's life.

NamedTuples rather than frozen dataclasses: several are made for every message, and a tuple
is built three times faster. They are just as immutable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from mq.core.model import Message, QueueSettings


class Event(IntEnum):
    """A kind of event in a message's life: log code (the value) and wire name."""

    wire: str

    def __new__(cls, code: int, wire: str) -> Event:
        member = int.__new__(cls, code)
        member._value_ = code
        member.wire = wire
        return member

    PUBLISHED = 0, "published"
    LEASED = 1, "leased"
    ACKED = 2, "acked"
    NACKED = 3, "nacked"
    EXPIRED = 4, "lease expired"
    REMOVED = 5, "removed"  # with a reason: retention, ttl, purge, queue deleted
    RELEASED = 6, "released (holder died)"
    DEAD_LETTERED = 7, "dead-lettered"
    REDRIVEN = 8, "redriven"
    LEFT = 9, "released (holder left)"  # a goodbye (QUIT, a plain connection closing)


BY_CODE: dict[int, Event] = {int(e): e for e in Event}  # log code -> its event
FINAL = frozenset({Event.ACKED, Event.REMOVED})  # after one of these, a message is gone


class Appended(NamedTuple):
    message: Message
    body_of: int | None = None  # fan-out copy: the message whose log row holds the body

    @property
    def kind(self) -> Event:
        return Event.PUBLISHED


class Leased(NamedTuple):
    msg_id: int
    delivery: int
    holder: str
    at: float
    queue: str = ""
    until: float = 0.0  # clustered: Unix s the lease ends (a touch records it again); else 0

    @property
    def kind(self) -> Event:
        return Event.LEASED


class Acked(NamedTuple):
    msg_id: int
    at: float
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.ACKED


class Nacked(NamedTuple):
    msg_id: int
    at: float
    ready_at: float
    error: str | None = None
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.NACKED


class Expired(NamedTuple):
    """A lease whose deadline passed."""

    msg_id: int
    at: float
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.EXPIRED


class Released(NamedTuple):
    """A lease given back because its holder died: the message counts one more death."""

    msg_id: int
    at: float
    holder: str
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.RELEASED


class Left(NamedTuple):
    """A lease given back because its holder said goodbye: no death is counted."""

    msg_id: int
    at: float
    holder: str
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.LEFT


class Removed(NamedTuple):
    msg_id: int
    at: float
    reason: str = "retention"  # or "ttl", "purge", "queue deleted"
    queue: str = ""

    @property
    def kind(self) -> Event:
        return Event.REMOVED


class Moved(NamedTuple):
    """To a dead-letter queue (reason says why) or back from one (a redrive)."""

    msg_id: int
    at: float
    queue: str
    reason: str
    delivery_base: int
    redrive: bool = False
    source: str = ""  # the queue it left

    @property
    def kind(self) -> Event:
        return Event.REDRIVEN if self.redrive else Event.DEAD_LETTERED


class Declared(NamedTuple):
    queue: str
    settings: QueueSettings


class Purged(NamedTuple):
    """A queue deleted with all its messages and settings."""

    queue: str


class Bound(NamedTuple):
    topic: str
    queue: str
    bound: bool  # False: unbound


MessageChange = Appended | Leased | Acked | Nacked | Expired | Released | Left | Removed | Moved
Change = MessageChange | Declared | Purged | Bound


@dataclass(frozen=True, slots=True)
class Effects:
    """What the broker's operations did since the last time the caller asked."""

    changes: list[Change]  # in the order they happened: for the log and MONITOR
    woken: frozenset[str]  # queues whose waiting consumers may be served now: they gained
    # ready messages, a holder's credit grew, or a subscription asked (Broker.wake)
