"""The operations of protocol.md section 2.3, sans-IO.

Each function returns a `Request`: the map to send (without `rid`, which the client assigns)
and the function that turns the reply map into the caller's value. Both clients (asyncio and
blocking) send these, so the fields and the reply checks are written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mq_client.errors import FrameTooLarge, ProtocolError, error_from_reply
from mq_client.message import AckFailure, AckResult, Message
from mq_client.session import Session

T = TypeVar("T")

Body = bytes | bytearray | memoryview | str
"""A message body: bytes-like, or str (sent as its UTF-8 bytes)."""
ReceiptLike = str | Message
"""A receipt string, or the `Message` whose receipt it is."""

MAX_MPUB_BODIES = 10_000
"""The protocol's upper bound on bodies per `mpub` frame (protocol.md section 7)."""
MAX_ACK_RECEIPTS = 10_000
"""The protocol's upper bound on receipts per batch `ack` frame (protocol.md section 2.3)."""
_MPUB_OVERHEAD_BYTES = 64
"""Generous msgpack size of an `mpub` map without its queue name and bodies, in bytes."""
_ACK_OVERHEAD_BYTES = 64
"""Generous msgpack size of a batch `ack` map without its receipts, in bytes."""
_BIN_HEADER_BYTES = 5
"""Largest msgpack bin header (bin32), in bytes."""
_STR_HEADER_BYTES = 5
"""Largest msgpack str header (str32), in bytes."""


@dataclass(frozen=True, slots=True)
class Request(Generic[T]):
    """One request: `fields` to send and `parse` to read a successful reply.

    `wait_s` is how long, in seconds, the broker may legitimately hold the reply back (a `get`
    long-poll); blocking clients add it to their timeout.
    """

    fields: dict[str, Any]
    parse: Callable[[dict[str, Any]], T] = field(repr=False)
    wait_s: float = 0.0

    def to_wire(self, rid: int) -> dict[str, Any]:
        """The map to send under request id `rid`.

        Key order is op, rid, then the fields: not required by the protocol, but it makes our
        frames byte-identical to tests/vectors/frames.json.
        """
        return {"op": self.fields["op"], "rid": rid, **self.fields}


def check_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Return a successful reply; raise its typed error if it failed, `ProtocolError` if odd."""
    ok = reply.get("ok")
    if ok is True:
        return reply
    if ok is False:
        raise error_from_reply(reply)
    raise ProtocolError(f"reply without a boolean 'ok': {reply!r}")


def _request(op: str, **fields: Any) -> dict[str, Any]:
    # protocol.md 2.3: optional fields may be omitted; omitting keeps frames small and lets
    # the broker apply its defaults.
    return {"op": op, **{k: v for k, v in fields.items() if v is not None}}


def _field(reply: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = reply.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(f"reply field {name!r} is {value!r}, expected {kind}")
    return value


def _int_list(reply: dict[str, Any], name: str) -> list[int]:
    values = _field(reply, name, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ProtocolError(f"reply field {name!r} is not a list of ints: {values!r}")
    return list(values)


def _result_fields(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("rid", "ok")}


def to_bytes(body: Body) -> bytes:
    """A body as bytes: str is encoded as UTF-8, other bytes-like objects are copied."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"a body must be bytes or str, not {type(body).__name__}")


def to_receipt(receipt: ReceiptLike) -> str:
    """The receipt string of a receipt or a `Message`."""
    if isinstance(receipt, Message):
        return receipt.receipt
    if isinstance(receipt, str):
        return receipt
    raise TypeError(f"expected a receipt str or a Message, not {type(receipt).__name__}")


def ping() -> Request[None]:
    """`ping`: a round trip."""
    return Request(_request("ping"), lambda reply: None)


def publish(queue: str, body: Body, key: str | None = None) -> Request[int]:
    """`pub`: one message; the reply gives its msg_id."""
    return Request(
        _request("pub", queue=queue, body=to_bytes(body), key=key),
        lambda reply: int(_field(reply, "msg_id", int)),
    )


def _publish_batch(queue: str, bodies: list[bytes]) -> Request[list[int]]:
    def parse(reply: dict[str, Any]) -> list[int]:
        ids = _int_list(reply, "msg_ids")
        if len(ids) != len(bodies):
            raise ProtocolError(f"mpub of {len(bodies)} bodies answered with {len(ids)} msg_ids")
        return ids

    return Request(_request("mpub", queue=queue, bodies=bodies), parse)


def publish_batches(
    queue: str, bodies: Iterable[Body], batch_size: int, max_frame_bytes: int
) -> list[Request[list[int]]]:
    """Split `bodies` into `mpub` requests of at most `batch_size` bodies each.

    A batch is also cut early when it would exceed `max_frame_bytes` bytes, so large bodies do
    not turn a batch into a frame the broker rejects (and closes the connection over). A body
    too large for any frame raises `FrameTooLarge` here, before anything is sent.
    """
    if not 1 <= batch_size <= MAX_MPUB_BODIES:
        raise ValueError(f"batch_size must be 1..{MAX_MPUB_BODIES}, got {batch_size}")
    budget = max_frame_bytes - _MPUB_OVERHEAD_BYTES - len(queue.encode("utf-8", "replace"))
    requests: list[Request[list[int]]] = []
    batch: list[bytes] = []
    size = 0
    for body in bodies:
        data = to_bytes(body)
        cost = len(data) + _BIN_HEADER_BYTES
        if cost > budget:
            raise FrameTooLarge(
                FrameTooLarge.CODE,
                f"a body of {len(data)} bytes does not fit in max_frame_bytes={max_frame_bytes}; nothing sent",
                False,
            )
        if batch and (len(batch) == batch_size or size + cost > budget):
            requests.append(_publish_batch(queue, batch))
            batch, size = [], 0
        batch.append(data)
        size += cost
    if batch:
        requests.append(_publish_batch(queue, batch))
    return requests


def _messages(reply: dict[str, Any]) -> list[Message]:
    return [Message.from_wire(m) for m in _field(reply, "msgs", list)]


def get(queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1) -> Request[list[Message]]:
    """`get`: lease up to `max` messages for `lease_s` seconds, waiting up to `wait_s` seconds."""
    return Request(
        _request("get", queue=queue, lease_s=lease_s, wait_s=wait_s, max=max),
        _messages,
        wait_s=float(wait_s or 0.0),
    )


def ack(receipt: ReceiptLike) -> Request[None]:
    """`ack`: the delivery is done."""
    return Request(_request("ack", receipt=to_receipt(receipt)), lambda reply: None)


def ack_many(receipts: Sequence[str]) -> Request[AckResult]:
    """Batch `ack` of 1..10,000 receipt strings: one commit; the reply says which ones failed."""

    def parse(reply: dict[str, Any]) -> AckResult:
        acked: int = _field(reply, "acked", int)
        failed = tuple(AckFailure.from_wire(f) for f in _field(reply, "failed", list))
        if acked < 0 or acked + len(failed) != len(receipts):
            raise ProtocolError(f"ack of {len(receipts)} receipts answered with {acked} acked and {len(failed)} failed")
        return AckResult(acked, failed)

    return Request({"op": "ack", "receipts": receipts}, parse)


def ack_batches(
    receipts: Iterable[ReceiptLike], max_frame_bytes: int, batch_size: int = MAX_ACK_RECEIPTS
) -> list[Request[AckResult]]:
    """Split `receipts` into batch `ack` requests of at most `batch_size` (1..10,000) receipts.

    A batch is also cut early when it would exceed `max_frame_bytes` bytes. No receipts, no
    requests: the protocol has no empty batch.
    """
    if not 1 <= batch_size <= MAX_ACK_RECEIPTS:
        raise ValueError(f"batch_size must be 1..{MAX_ACK_RECEIPTS}, got {batch_size}")
    budget = max_frame_bytes - _ACK_OVERHEAD_BYTES
    requests: list[Request[AckResult]] = []
    batch: list[str] = []
    size = 0
    for receipt in receipts:
        text = to_receipt(receipt)
        cost = (len(text) if text.isascii() else len(text.encode("utf-8", "replace"))) + _STR_HEADER_BYTES
        if batch and (len(batch) == batch_size or size + cost > budget):
            requests.append(ack_many(batch))
            batch, size = [], 0
        batch.append(text)
        size += cost
    if batch:
        requests.append(ack_many(batch))
    return requests


def nack(receipt: ReceiptLike, delay_s: float | None = None) -> Request[None]:
    """`nack`: give the delivery back, now or after `delay_s` seconds."""
    return Request(_request("nack", receipt=to_receipt(receipt), delay_s=delay_s), lambda reply: None)


def touch(receipt: ReceiptLike, lease_s: float | None = None) -> Request[float]:
    """`touch`: the lease ends `lease_s` seconds from now; the reply gives that length."""
    return Request(
        _request("touch", receipt=to_receipt(receipt), lease_s=lease_s),
        lambda reply: float(_field(reply, "lease_s", (int, float))),
    )


def declare(queue: str, retention_s: float | None = None, lease_s: float | None = None) -> Request[dict[str, Any]]:
    """`declare`: set a queue's retention and default lease, in seconds."""
    return Request(
        _request("declare", queue=queue, retention_s=retention_s, lease_s=lease_s),
        _result_fields,
    )


def queues() -> Request[list[str]]:
    """`queues`: every queue name, sorted."""

    def parse(reply: dict[str, Any]) -> list[str]:
        names = _field(reply, "queues", list)
        if not all(isinstance(n, str) for n in names):
            raise ProtocolError(f"reply field 'queues' is not a list of str: {names!r}")
        return list(names)

    return Request(_request("queues"), parse)


def stats(queue: str | None = None) -> Request[dict[str, Any]]:
    """`stats`: `{"server": {...}, "queues": {name: {...}}}`, for one queue or all."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        _field(reply, "server", dict)
        _field(reply, "queues", dict)
        return _result_fields(reply)

    return Request(_request("stats", queue=queue), parse)


def quit() -> Request[None]:
    """`quit`: goodbye; the broker then closes the connection and ends the session, if any."""
    return Request(_request("quit"), lambda reply: None)


def hello(consumer: str, heartbeat_s: float | None = None, session: str | None = None) -> Request[Session]:
    """`hello`: start a consumer session, or resume the one whose token is `session`.

    `heartbeat_s` is the heartbeat interval asked for, in seconds (the broker's default if None).
    """
    return Request(
        _request("hello", consumer=consumer, heartbeat_s=heartbeat_s, session=session),
        lambda reply: Session.from_wire(reply, consumer),
    )


def heartbeat() -> Request[None]:
    """`heartbeat`: a sign of life for the connection's session."""
    return Request(_request("heartbeat"), lambda reply: None)


def join(queue: str, group: str, prefetch: int | None = None) -> Request[dict[str, Any]]:
    """`join`: the session's consumer joins the queue's group, holding at most `prefetch` leases.

    The reply gives `queue`, `group`, `consumer`, `prefetch` and `members` (the group's size).
    """

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        for name in ("queue", "group", "consumer"):
            _field(reply, name, str)
        for name in ("prefetch", "members"):
            _field(reply, name, int)
        return _result_fields(reply)

    return Request(_request("join", queue=queue, group=group, prefetch=prefetch), parse)


def leave(queue: str) -> Request[None]:
    """`leave`: the session's consumer leaves the queue's group (a no-op if not a member)."""
    return Request(_request("leave", queue=queue), lambda reply: None)
