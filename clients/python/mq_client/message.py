"""The value types of the client (protocol.md 2.3): a delivered message, a peeked one, what a
publish and a batch ack did."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import Any, NamedTuple

from mq_client.errors import MQError, ProtocolError, error_class
from mq_client.serializers import CONTENT_TYPE, Serializer


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, but never a valid count or id on the wire.
    return isinstance(value, int) and not isinstance(value, bool)


class Headers(Mapping[str, str]):
    """A message's headers (protocol.md 2.3): a read-only map of str to str. Hashable and
    picklable, like the `Message` that holds it; equal to any mapping of the same items."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items = dict(items)

    def __getitem__(self, name: str) -> str:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        return self._items == (dict(other) if isinstance(other, Mapping) else other)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def __reduce__(self) -> tuple[type[Headers], tuple[dict[str, str]]]:
        return Headers, (self._items,)


NO_HEADERS = Headers()
"""The headers of a message published without any: one shared empty map."""


def to_headers(value: object) -> Headers:
    """`Headers` of a mapping of str to str from the wire or a caller; ValueError otherwise."""
    if type(value) is Headers:
        return value
    if value is None:
        return NO_HEADERS
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"invalid headers {value!r:.80}: expected a map of str to str")
    return Headers(value) if value else NO_HEADERS


class _MessageFields(NamedTuple):
    receipt: str
    msg_id: int
    queue: str
    deliveries: int
    body: bytes
    key: str | None
    published_at: float
    priority: int = 0
    headers: Headers = NO_HEADERS


_tuple_new = tuple.__new__


class Message(_MessageFields):
    """One delivery of a message, as returned by `get` or pushed to a subscription.

    `receipt` names this delivery (`<msg_id>.<deliveries>`) and is what `ack`, `nack` and
    `touch` take; `deliveries` counts leases including this one (1 on first delivery);
    `published_at` is the Unix time of the publish, in seconds; `priority` is 0..9 (0 when the
    broker does not say); `headers` are those the publish gave (`Headers`, empty when none).
    Immutable: assigning a field raises `dataclasses.FrozenInstanceError`. The body stays
    bytes: `decode(serializer)` turns it into a value when asked (mq_client.serializers).

    A NamedTuple rather than a frozen dataclass, like the broker's `Receipt`: a `get` reply or
    a push builds up to 1,000 of these at once, and a frozen dataclass sets each field through
    `object.__setattr__`, which made construction a quarter of a consumer's CPU (timeit,
    `from_wire` of 100,000 maps: 2.9 us each as a dataclass, 1.3 us as this). Being a tuple, a
    Message also unpacks, and compares equal to a tuple of the same values.
    """

    __slots__ = ()

    def __new__(  # noqa: PLR0917  # the positional signature the dataclass had
        cls,
        receipt: str,
        msg_id: int,
        queue: str,
        deliveries: int,
        body: bytes,
        key: str | None,
        published_at: float,
        priority: int = 0,
        headers: Mapping[str, str] = NO_HEADERS,
    ) -> Message:
        # The fast check accepts the exact types msgpack produces, which is every message of a
        # `get` reply (a hot path: up to 1,000 per reply); anything else gets the full check.
        if not (
            type(receipt) is str
            and receipt
            and type(msg_id) is int
            and msg_id >= 0
            and type(queue) is str
            and type(deliveries) is int
            and deliveries >= 1
            and type(body) is bytes
            and (key is None or type(key) is str)
            and type(published_at) is float
            and type(priority) is int
        ):
            published_at = _checked((receipt, msg_id, queue, deliveries, body, key, published_at, priority))
        if type(headers) is not Headers:
            headers = to_headers(headers)
        return _tuple_new(cls, (receipt, msg_id, queue, deliveries, body, key, published_at, priority, headers))

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Message:  # type: ignore[override]  # same call
        # NamedTuple's own builds the tuple unchecked, and `_replace` goes through it.
        return cls(*iterable)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Message:
        """Build a message from its map in a `get` reply or a push; raises `ProtocolError` if malformed."""
        if type(m) is not dict and not isinstance(m, Mapping):
            raise ProtocolError(f"a message must be a map, got {type(m).__name__}")
        get: Callable[[str], Any] = m.get  # values from the wire are Any until checked
        priority = get("priority")
        try:
            # __new__ checks every one of them.
            return cls(
                get("receipt"),
                get("msg_id"),
                get("queue"),
                get("deliveries"),
                get("body"),
                get("key"),
                get("published_at"),
                0 if priority is None else priority,
                get("headers") or NO_HEADERS,
            )
        except ValueError as exc:
            raise ProtocolError(f"bad message in reply: {exc}") from exc

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (raises UnicodeDecodeError if it is not)."""
        return self.body.decode("utf-8")

    @property
    def content_type(self) -> str | None:
        """The `content-type` header, if the publish gave one."""
        return self.headers.get(CONTENT_TYPE)

    def decode(self, serializer: Serializer) -> Any:
        """The body turned into a value by `serializer` (`JSON`, `MSGPACK`): only when asked,
        never by the client on its own. Raises `ContentTypeMismatch` if the message says it is
        of another content type, and the serializer's own error if the body is not valid."""
        return serializer.decode(self.body, self.content_type)


def _checked(values: tuple[object, ...]) -> float:
    """The full check of a message's field values, in field order; returns `published_at` as a
    float (msgpack may carry a whole-second timestamp as an int) or raises ValueError naming
    what is wrong."""
    fields = dict(zip(_MessageFields._fields, values, strict=False))  # all but headers
    if _is_int(fields["published_at"]):
        fields["published_at"] = float(fields["published_at"])  # type: ignore[arg-type]
    msg_id, deliveries = fields["msg_id"], fields["deliveries"]
    checks = {
        "receipt": isinstance(fields["receipt"], str) and bool(fields["receipt"]),
        "msg_id": isinstance(msg_id, int) and not isinstance(msg_id, bool) and msg_id >= 0,
        "queue": isinstance(fields["queue"], str),
        "deliveries": isinstance(deliveries, int) and not isinstance(deliveries, bool)
        and deliveries >= 1,
        "body": isinstance(fields["body"], bytes),
        "key": fields["key"] is None or isinstance(fields["key"], str),
        "published_at": isinstance(fields["published_at"], float),
        "priority": _is_int(fields["priority"]),
    }
    problems = [name for name, ok in checks.items() if not ok]
    if problems:
        # Values cut to 80 characters: a body can be megabytes.
        detail = ", ".join(f"{name}={fields[name]!r:.80}" for name in problems)
        raise ValueError(f"invalid message field(s): {detail}")
    published_at = fields["published_at"]
    assert isinstance(published_at, float)
    return published_at


@dataclass(frozen=True, slots=True)
class PeekedMessage:
    """A ready message as `peek` shows it: not leased, so without a receipt.

    `last_error` is the error text of its last `nack`, if any. In a dead-letter queue,
    `dead_from` is the queue it came from, `dead_reason` why (say `delivered 5 times
    (max_deliveries=5)`) and `dead_at` when, in Unix seconds; elsewhere all three are None.
    `headers` are those of its publish (empty when none).
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
    headers: Headers = NO_HEADERS

    def __post_init__(self) -> None:
        for name in ("published_at", "dead_at"):
            if _is_int(getattr(self, name)):
                object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "headers", to_headers(self.headers))
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
                get("headers"),
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
