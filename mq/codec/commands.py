"""The commands of the protocol as frozen values, shared by the binary and the text mode.

Each command validates its own fields against the protocol's limits (protocol.md section 7), so
a handler never sees a malformed request. Limits that belong to the deployment (frame and line
sizes) live in the server's Config instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from mq.errors import bad_request

MAX_LEASE_S = 43_200.0
MIN_LEASE_S = 0.01
MAX_WAIT_S = 300.0
MAX_DELAY_S = 86_400.0 * 30
MIN_RETENTION_S = 1.0
MAX_RETENTION_S = 86_400.0 * 365
MAX_GET_BATCH = 1_000
MAX_PUB_BATCH = 10_000
MAX_ACK_BATCH = 10_000
MAX_KEY_BYTES = 256
MIN_HEARTBEAT_S = 0.05
MAX_HEARTBEAT_S = 300.0
MAX_PREFETCH = 10_000
MAX_PRIORITY = 9
MAX_TTL_S = MAX_RETENTION_S
MAX_DEDUP_BYTES = 128
MAX_ERROR_BYTES = 4_096
MAX_PEEK = 1_000
MAX_DELIVERIES = 1_000_000

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


def check_queue(name: object) -> str:
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise bad_request(
            f"queue name {name!r} is invalid: use 1 to 200 of A-Z a-z 0-9 _ - . :"
        )
    return name


def check_name(field: str, name: object) -> str:
    """Consumer and group names follow the rules of queue names."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise bad_request(f"{field} {name!r} is invalid: use 1 to 200 of A-Z a-z 0-9 _ - . :")
    return name


def check_seconds(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise bad_request(f"{field} must be a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise bad_request(f"{field}={value} is out of bounds: {low:g} to {high:g} seconds")
    return float(value)


def optional_seconds(field: str, value: object, low: float, high: float) -> float | None:
    return None if value is None else check_seconds(field, value, low, high)


def check_body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise bad_request(f"body must be bin or str, got {type(value).__name__}")


def check_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode()) > MAX_KEY_BYTES:
        raise bad_request(f"key must be a string of at most {MAX_KEY_BYTES} bytes")
    return value


class Receipt(NamedTuple):
    """Names one delivery: message `msg_id`, delivery number `delivery` (the lease epoch).

    A tuple rather than a dataclass: batch acks parse thousands per request."""

    msg_id: int
    delivery: int

    @classmethod
    def parse(cls, text: object) -> Receipt:
        if isinstance(text, str) and len(text) <= 41 and text.isascii():
            msg_id, dot, delivery = text.partition(".")
            if dot and msg_id.isdigit() and delivery.isdigit():
                return cls(int(msg_id), int(delivery))
        raise bad_request(f"receipt {text!r:.60} is invalid: expected <msg_id>.<delivery> like "
                          "17.2")

    def __str__(self) -> str:
        return f"{self.msg_id}.{self.delivery}"


def check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{field} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_text(field: str, value: object, max_bytes: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode()) > max_bytes:
        raise bad_request(f"{field} must be a string of at most {max_bytes} bytes")
    return value


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """How a message is published: priority, delay, TTL and deduplication."""

    priority: int = 0
    delay_s: float = 0.0
    ttl_s: float | None = None
    dedup_id: str | None = None
    not_before: float | None = None  # Unix s; the later of this and now + delay_s counts

    def __post_init__(self) -> None:
        check_int("priority", self.priority, 0, MAX_PRIORITY)
        check_seconds("delay_s", self.delay_s, 0.0, MAX_DELAY_S)
        optional_seconds("not_before", self.not_before, 0.0, 2**40)
        optional_seconds("ttl_s", self.ttl_s, 0.001, MAX_TTL_S)
        check_text("dedup_id", self.dedup_id, MAX_DEDUP_BYTES)


    def delay_from(self, now: float) -> float:
        """Seconds from `now` until the message may be delivered."""
        if self.not_before is None:
            return self.delay_s
        return max(self.delay_s, self.not_before - now)


PLAIN = PublishOptions()


@dataclass(frozen=True, slots=True)
class Ping:
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    queue: str
    body: bytes
    key: str | None = None
    rid: int | None = None
    options: PublishOptions = PLAIN

    def __post_init__(self) -> None:
        check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class PublishMany:
    queue: str
    bodies: tuple[bytes, ...]
    rid: int | None = None
    options: PublishOptions = PLAIN

    def __post_init__(self) -> None:
        check_queue(self.queue)
        if not 1 <= len(self.bodies) <= MAX_PUB_BATCH:
            raise bad_request(f"bodies must hold 1 to {MAX_PUB_BATCH} messages")
        if self.options.dedup_id is not None:
            raise bad_request("dedup_id names one message: use pub, not mpub")


@dataclass(frozen=True, slots=True)
class Fanout:
    """Publish once to a topic: one copy per bound queue."""

    topic: str
    body: bytes
    key: str | None = None
    rid: int | None = None
    options: PublishOptions = PLAIN

    def __post_init__(self) -> None:
        check_name("topic", self.topic)


@dataclass(frozen=True, slots=True)
class Get:
    queue: str
    lease_s: float | None = None
    wait_s: float = 0.0
    max: int = 1
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)
        check_seconds("wait_s", self.wait_s, 0.0, MAX_WAIT_S)
        if isinstance(self.max, bool) or not isinstance(self.max, int):
            raise bad_request(f"max must be an integer, got {self.max!r}")
        if not 1 <= self.max <= MAX_GET_BATCH:
            raise bad_request(f"max={self.max} is out of bounds: 1 to {MAX_GET_BATCH}")


@dataclass(frozen=True, slots=True)
class Ack:
    receipt: Receipt
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class AckMany:
    """Ack a batch: each receipt succeeds or fails on its own; one commit for all."""

    receipts: tuple[Receipt, ...]
    rid: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.receipts) <= MAX_ACK_BATCH:
            raise bad_request(f"receipts must hold 1 to {MAX_ACK_BATCH} receipts")


@dataclass(frozen=True, slots=True)
class Nack:
    receipt: Receipt
    delay_s: float = 0.0
    rid: int | None = None
    error: str | None = None  # why the consumer gave up; kept with the message

    def __post_init__(self) -> None:
        check_seconds("delay_s", self.delay_s, 0.0, MAX_DELAY_S)
        check_text("error", self.error, MAX_ERROR_BYTES)


@dataclass(frozen=True, slots=True)
class Touch:
    receipt: Receipt
    lease_s: float | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)


@dataclass(frozen=True, slots=True)
class Declare:
    queue: str
    retention_s: float | None = None
    lease_s: float | None = None
    rid: int | None = None
    max_deliveries: int | None = None
    dead_letter: str | None = None
    dedup_window_s: float | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        optional_seconds("retention_s", self.retention_s, MIN_RETENTION_S, MAX_RETENTION_S)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)
        if self.max_deliveries is not None:
            check_int("max_deliveries", self.max_deliveries, 0, MAX_DELIVERIES)
        if self.dead_letter is not None:
            check_queue(self.dead_letter)
        optional_seconds("dedup_window_s", self.dedup_window_s, 0.0, MAX_RETENTION_S)

    def settings(self) -> dict[str, object]:
        """The settings this declare changes (None: left as they are)."""
        return {"retention_s": self.retention_s, "lease_s": self.lease_s,
                "max_deliveries": self.max_deliveries, "dead_letter": self.dead_letter,
                "dedup_window_s": self.dedup_window_s}


@dataclass(frozen=True, slots=True)
class QueueOp:
    """Base of the commands that name one queue and nothing else."""

    queue: str
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)


class Purge(QueueOp):
    __slots__ = ()


class DeleteQueue(QueueOp):
    __slots__ = ()


class Unsubscribe(QueueOp):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Peek:
    queue: str
    count: int = 10
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("count", self.count, 1, MAX_PEEK)


@dataclass(frozen=True, slots=True)
class Redrive:
    queue: str
    count: int = MAX_PEEK
    to: str | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("count", self.count, 1, MAX_PUB_BATCH)
        if self.to is not None:
            check_queue(self.to)


@dataclass(frozen=True, slots=True)
class Bind:
    topic: str
    queue: str
    unbind: bool = False
    rid: int | None = None

    def __post_init__(self) -> None:
        check_name("topic", self.topic)
        check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class Bindings:
    topic: str | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        if self.topic is not None:
            check_name("topic", self.topic)


@dataclass(frozen=True, slots=True)
class MessageOp:
    """Base of the commands that name one message by id."""

    msg_id: int
    rid: int | None = None

    def __post_init__(self) -> None:
        check_int("msg_id", self.msg_id, 1, 2**63 - 1)


class Explain(MessageOp):
    __slots__ = ()


class History(MessageOp):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class MaybeQueueOp:
    """Base of the commands about one queue, or all of them (`queue` None)."""

    queue: str | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue(self.queue)


class Monitor(MaybeQueueOp):
    """Stream a line for every committed message event (of one queue, or all)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Push consumption: the broker sends up to `prefetch` unacked messages, more as acks come."""

    queue: str
    prefetch: int = 100
    lease_s: float | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("prefetch", self.prefetch, 1, MAX_PREFETCH)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)


@dataclass(frozen=True, slots=True)
class Hello:
    """Identify as a consumer and start (or resume, with `session`) a heartbeat session."""

    consumer: str
    heartbeat_s: float | None = None
    session: str | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_name("consumer", self.consumer)
        optional_seconds("heartbeat_s", self.heartbeat_s, MIN_HEARTBEAT_S, MAX_HEARTBEAT_S)
        if self.session is not None and (not isinstance(self.session, str)
                                         or not 1 <= len(self.session) <= 64):
            raise bad_request("session must be the token a previous hello returned")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Join:
    queue: str
    group: str
    prefetch: int | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_name("group", self.group)
        p = self.prefetch
        if p is not None and (isinstance(p, bool) or not isinstance(p, int)
                              or not 1 <= p <= MAX_PREFETCH):
            raise bad_request(f"prefetch must be an integer from 1 to {MAX_PREFETCH}")


@dataclass(frozen=True, slots=True)
class Leave:
    queue: str
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class ListQueues:
    rid: int | None = None


class Stats(MaybeQueueOp):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Unmonitor:
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Help:
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Quit:
    rid: int | None = None


Command = (
    Ping | Publish | PublishMany | Fanout | Get | Ack | AckMany | Nack | Touch | Declare
    | ListQueues | Stats | Help | Quit | Hello | Heartbeat | Join | Leave | Purge | DeleteQueue
    | Peek | Redrive | Bind | Bindings | Explain | History | Monitor | Unmonitor | Subscribe
    | Unsubscribe
)
