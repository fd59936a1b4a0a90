"""The value types of the client (protocol.md 2.3): a delivered message, a peeked one, what a
publish and a batch ack did."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mq_client.errors import MQError, ProtocolError, error_class


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, but never a valid count or id on the wire.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a message, as returned by `get` or pushed to a subscription.

    `receipt` names this delivery (`<msg_id>.<deliveries>`) and is what `ack`, `nack` and
    `touch` take; `deliveries` counts leases including this one (1 on first delivery);
    `published_at` is the Unix time of the publish, in seconds; `priority` is 0..9 (0 when the
    broker does not say).
    """

    receipt: str
    msg_id: int
    queue: str
    deliveries: int
    body: bytes
    key: str | None
    published_at: float
    priority: int = 0

    def __post_init__(self) -> None:
        # The fast check accepts the exact types msgpack produces, which is every message of a
        # `get` reply (a hot path: up to 1,000 per reply); anything else gets the full check.
        if (
            type(self.receipt) is str
            and self.receipt
            and type(self.msg_id) is int
            and self.msg_id >= 0
            and type(self.queue) is str
            and type(self.deliveries) is int
            and self.deliveries >= 1
            and type(self.body) is bytes
            and (self.key is None or type(self.key) is str)
            and type(self.published_at) is float
            and type(self.priority) is int
        ):
            return
        self._check()

    def _check(self) -> None:
        # msgpack may carry a whole-second timestamp as an int; the field is always a float.
        if _is_int(self.published_at):
            object.__setattr__(self, "published_at", float(self.published_at))
        problems = [
            name
            for name, ok in (
                ("receipt", isinstance(self.receipt, str) and bool(self.receipt)),
                ("msg_id", _is_int(self.msg_id) and self.msg_id >= 0),
                ("queue", isinstance(self.queue, str)),
                ("deliveries", _is_int(self.deliveries) and self.deliveries >= 1),
                ("body", isinstance(self.body, bytes)),
                ("key", self.key is None or isinstance(self.key, str)),
                ("published_at", isinstance(self.published_at, float)),
                ("priority", _is_int(self.priority)),
            )
            if not ok
        ]
        if problems:
            # Values cut to 80 characters: a body can be megabytes.
            detail = ", ".join(f"{name}={getattr(self, name)!r:.80}" for name in problems)
            raise ValueError(f"invalid message field(s): {detail}")

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Message:
        """Build a message from its map in a `get` reply or a push; raises `ProtocolError` if malformed."""
        if type(m) is not dict and not isinstance(m, Mapping):
            raise ProtocolError(f"a message must be a map, got {type(m).__name__}")
        get: Callable[[str], Any] = m.get  # values from the wire are Any until checked
        priority = get("priority")
        try:
            # __post_init__ checks every one of them.
            return cls(
                get("receipt"),
                get("msg_id"),
                get("queue"),
                get("deliveries"),
                get("body"),
                get("key"),
                get("published_at"),
                0 if priority is None else priority,
            )
        except ValueError as exc:
            raise ProtocolError(f"bad message in reply: {exc}") from exc

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (raises UnicodeDecodeError if it is not)."""
        return self.body.decode("utf-8")


@dataclass(frozen=True, slots=True)
class PeekedMessage:
    """A ready message as `peek` shows it: not leased, so without a receipt.

    `last_error` is the error text of its last `nack`, if any. In a dead-letter queue,
    `dead_from` is the queue it came from, `dead_reason` why (say `delivered 5 times
    (max_deliveries=5)`) and `dead_at` when, in Unix seconds; elsewhere all three are None.
    """

    msg_id: int
    queue: str
    deliveries: int
    body: bytes
    key: str | None
    priority: int
    published_at: float
    last_error: str | None = None
    dead_from: str | None = None
    dead_reason: str | None = None
    dead_at: float | None = None

    def __post_init__(self) -> None:
        for name in ("published_at", "dead_at"):
            if _is_int(getattr(self, name)):
                object.__setattr__(self, name, float(getattr(self, name)))
        problems = [
            name
            for name, ok in (
                ("msg_id", _is_int(self.msg_id) and self.msg_id >= 0),
                ("queue", isinstance(self.queue, str)),
                ("deliveries", _is_int(self.deliveries) and self.deliveries >= 0),
                ("body", isinstance(self.body, bytes)),
                ("key", self.key is None or isinstance(self.key, str)),
                ("priority", _is_int(self.priority)),
                ("published_at", isinstance(self.published_at, float)),
                ("last_error", self.last_error is None or isinstance(self.last_error, str)),
                ("dead_from", self.dead_from is None or isinstance(self.dead_from, str)),
                ("dead_reason", self.dead_reason is None or isinstance(self.dead_reason, str)),
                ("dead_at", self.dead_at is None or isinstance(self.dead_at, float)),
            )
            if not ok
        ]
        if problems:
            detail = ", ".join(f"{name}={getattr(self, name)!r:.80}" for name in problems)
            raise ValueError(f"invalid peeked message field(s): {detail}")

    @classmethod
    def from_wire(cls, m: object) -> PeekedMessage:
        """Build one from an entry of a `peek` reply; raises `ProtocolError` if malformed."""
        if not isinstance(m, Mapping):
            raise ProtocolError(f"a peeked message must be a map, got {type(m).__name__}")
        get: Callable[[str], Any] = m.get  # checked by __post_init__
        priority = get("priority")
        try:
            return cls(
                get("msg_id"),
                get("queue"),
                get("deliveries"),
                get("body"),
                get("key"),
                0 if priority is None else priority,
                get("published_at"),
                get("last_error"),
                get("dead_from"),
                get("dead_reason"),
                get("dead_at"),
            )
        except ValueError as exc:
            raise ProtocolError(f"bad peeked message in reply: {exc}") from exc

    @property
    def dead(self) -> bool:
        """True if this message was dead-lettered (it sits in a dead-letter queue)."""
        return self.dead_from is not None


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish stored: the message's id, and whether it was a duplicate.

    `duplicate` is True when the queue had seen the publish's `dedup_id` within its dedup
    window: nothing was stored and `msg_id` is the first message's id (protocol.md 4.4).
    """

    msg_id: int
    duplicate: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.msg_id) or self.msg_id < 0:
            raise ValueError(f"msg_id must be an int >= 0, got {self.msg_id!r:.80}")
        if not isinstance(self.duplicate, bool):
            raise ValueError(f"duplicate must be a bool, got {self.duplicate!r:.80}")


@dataclass(frozen=True, slots=True)
class AckFailure:
    """One receipt that a batch ack could not ack, with the broker's error `code` and `message`."""

    receipt: str
    code: str
    message: str

    def __post_init__(self) -> None:
        for name in ("receipt", "code", "message"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"invalid ack failure field {name}={getattr(self, name)!r:.80}")

    @classmethod
    def from_wire(cls, m: object) -> AckFailure:
        """Build a failure from an entry of `failed` in a batch `ack` reply; raises `ProtocolError`."""
        if not isinstance(m, Mapping):
            raise ProtocolError(f"an ack failure must be a map, got {type(m).__name__}")
        try:
            get: Callable[[str], Any] = m.get  # checked by __post_init__
            return cls(get("receipt"), get("code"), get("message"))
        except ValueError as exc:
            raise ProtocolError(f"bad ack failure in reply: {exc}") from exc

    def error(self) -> MQError:
        """The typed exception this failure stands for (`LeaseLost`, `NotYourLease`, ...)."""
        return error_class(self.code)(self.code, self.message, False)


@dataclass(frozen=True, slots=True)
class AckResult:
    """What a batch ack did: how many receipts it `acked`, and the ones it could not, in `failed`."""

    acked: int = 0
    failed: tuple[AckFailure, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.acked) or self.acked < 0:
            raise ValueError(f"acked must be an int >= 0, got {self.acked!r:.80}")
        if not isinstance(self.failed, tuple) or not all(isinstance(f, AckFailure) for f in self.failed):
            raise ValueError(f"failed must be a tuple of AckFailure, got {self.failed!r:.80}")

    @property
    def ok(self) -> bool:
        """True if every receipt was acked."""
        return not self.failed

    @classmethod
    def combine(cls, results: Iterable[AckResult]) -> AckResult:
        """One result for many batches: the acked counts added, the failures in batch order."""
        acked = 0
        failed: list[AckFailure] = []
        for result in results:
            acked += result.acked
            failed.extend(result.failed)
        return cls(acked, tuple(failed))
