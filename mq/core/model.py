"""Value types of the queue model, and the changes the core reports for storage to record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(Enum):
    READY = "ready"
    DELAYED = "delayed"
    LEASED = "leased"
    POISONED = "poisoned"  # its holders died too often: kept aside, never delivered again


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
    deadline: float = 0.0  # when LEASED: when the lease ends (Unix s)
    deaths: int = 0  # how many holders died while leasing it

    def to_wire(self) -> dict[str, object]:
        """The message map of protocol.md 2.3, for the delivery being made now."""
        return {
            "receipt": f"{self.id}.{self.deliveries}",
            "msg_id": self.id,
            "queue": self.queue,
            "deliveries": self.deliveries,
            "body": self.body,
            "key": self.key,
            "published_at": self.published_at,
        }


@dataclass(frozen=True, slots=True)
class QueueSettings:
    retention_s: float
    lease_s: float


# Changes: what happened, in order, for the log. Storage turns each into rows.


@dataclass(frozen=True, slots=True)
class Appended:
    message: Message


@dataclass(frozen=True, slots=True)
class Leased:
    msg_id: int
    delivery: int
    holder: str
    at: float


@dataclass(frozen=True, slots=True)
class Acked:
    msg_id: int
    at: float


@dataclass(frozen=True, slots=True)
class Nacked:
    msg_id: int
    at: float
    ready_at: float


@dataclass(frozen=True, slots=True)
class Expired:
    msg_id: int
    at: float


@dataclass(frozen=True, slots=True)
class Released:
    """A lease given back because its holder died."""

    msg_id: int
    at: float
    holder: str


@dataclass(frozen=True, slots=True)
class Poisoned:
    msg_id: int
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    msg_id: int
    at: float


@dataclass(frozen=True, slots=True)
class Declared:
    queue: str
    settings: QueueSettings


Change = Appended | Leased | Acked | Nacked | Expired | Released | Poisoned | Dropped | Declared
