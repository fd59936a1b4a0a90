"""The operations of protocol.md section 2.3 that move messages, sans-IO (the administration
and introspection ones are in `admin_ops`).

Each function returns a `Request`: the map to send (without `rid`, which the client assigns)
and the function that turns the reply map into the caller's value. Both clients (asyncio and
blocking) send these, so the fields and the reply checks are written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mq_client.errors import FrameTooLarge, ProtocolError
from mq_client.message import AckFailure, AckResult, Message, PublishResult
from mq_client.request import (
    Body,
    ReceiptLike,
    Request,
    reply_field,
    reply_int_list,
    request_fields,
    result_fields,
    to_bytes,
    to_receipt,
)
from mq_client.session import Session

MAX_MPUB_BODIES = 10_000
"""The protocol's upper bound on bodies per `mpub` frame (protocol.md section 7)."""
MAX_ACK_RECEIPTS = 10_000
"""The protocol's upper bound on receipts per batch `ack` frame (protocol.md section 2.3)."""
_MPUB_OVERHEAD_BYTES = 192
"""Generous msgpack size of an `mpub` map without its queue name and bodies, publish options
included, in bytes."""
_ACK_OVERHEAD_BYTES = 64
"""Generous msgpack size of a batch `ack` map without its receipts, in bytes."""
_BIN_HEADER_BYTES = 5
"""Largest msgpack bin header (bin32), in bytes."""
_STR_HEADER_BYTES = 5
"""Largest msgpack str header (str32), in bytes."""


def ping() -> Request[None]:
    """`ping`: a round trip."""
    return Request(request_fields("ping"), lambda reply: None)


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """The publish options of protocol.md 2.3; None leaves each to the broker's default.

    `priority` is 0..9 (higher first), `delay_s` seconds of invisibility, `not_before` a Unix
    time before which the message stays invisible (the later of the two counts), `ttl_s` the
    age in seconds after which it is never delivered, `dedup_id` up to 128 bytes naming the
    publish for deduplication (protocol.md 4.4; not for `mpub`).
    """

    priority: int | None = None
    delay_s: float | None = None
    not_before: float | None = None
    ttl_s: float | None = None
    dedup_id: str | None = None

    def to_fields(self) -> dict[str, Any]:
        """The options that are set, as request fields."""
        return {
            name: value
            for name, value in (
                ("priority", self.priority),
                ("delay_s", self.delay_s),
                ("not_before", self.not_before),
                ("ttl_s", self.ttl_s),
                ("dedup_id", self.dedup_id),
            )
            if value is not None
        }


NO_OPTIONS = PublishOptions()


def _pub_fields(queue: str, body: Body, key: str | None, options: PublishOptions) -> dict[str, Any]:
    fields = request_fields("pub", queue=queue, body=to_bytes(body), key=key)
    if options is not NO_OPTIONS:
        fields.update(options.to_fields())
    return fields


def publish(queue: str, body: Body, key: str | None = None, options: PublishOptions = NO_OPTIONS) -> Request[int]:
    """`pub`: one message; the reply gives its msg_id (the first one's, for a duplicate)."""
    return Request(_pub_fields(queue, body, key, options), lambda reply: int(reply_field(reply, "msg_id", int)))


def publish_result(
    queue: str, body: Body, key: str | None = None, options: PublishOptions = NO_OPTIONS
) -> Request[PublishResult]:
    """`pub`: one message; the reply gives its msg_id and whether it was a duplicate."""

    def parse(reply: dict[str, Any]) -> PublishResult:
        duplicate = reply.get("duplicate", False)
        if not isinstance(duplicate, bool):
            raise ProtocolError(f"reply field 'duplicate' is {duplicate!r}, expected a bool")
        return PublishResult(reply_field(reply, "msg_id", int), duplicate)

    return Request(_pub_fields(queue, body, key, options), parse)


def fanout(
    topic: str, body: Body, key: str | None = None, options: PublishOptions = NO_OPTIONS
) -> Request[dict[str, int]]:
    """`fanout`: one copy per queue bound to `topic`; the reply maps each queue to its copy's id."""

    def parse(reply: dict[str, Any]) -> dict[str, int]:
        ids = reply_field(reply, "msg_ids", dict)
        if not all(isinstance(q, str) and isinstance(i, int) and not isinstance(i, bool) for q, i in ids.items()):
            raise ProtocolError(f"reply field 'msg_ids' is not a map of queue to msg id: {ids!r}")
        return dict(ids)

    fields = request_fields("fanout", topic=topic, body=to_bytes(body), key=key)
    fields.update(options.to_fields())
    return Request(fields, parse)


def _publish_batch(queue: str, bodies: list[bytes], options: dict[str, Any]) -> Request[list[int]]:
    def parse(reply: dict[str, Any]) -> list[int]:
        ids = reply_int_list(reply, "msg_ids")
        if len(ids) != len(bodies):
            raise ProtocolError(f"mpub of {len(bodies)} bodies answered with {len(ids)} msg_ids")
        return ids

    return Request({**request_fields("mpub", queue=queue, bodies=bodies), **options}, parse)


def publish_batches(
    queue: str,
    bodies: Iterable[Body],
    batch_size: int,
    max_frame_bytes: int,
    options: PublishOptions = NO_OPTIONS,
) -> list[Request[list[int]]]:
    """Split `bodies` into `mpub` requests of at most `batch_size` bodies each, all with `options`.

    A batch is also cut early when it would exceed `max_frame_bytes` bytes, so large bodies do
    not turn a batch into a frame the broker rejects (and closes the connection over). A body
    too large for any frame raises `FrameTooLarge` here, before anything is sent. `mpub` takes
    no `dedup_id` (ValueError).
    """
    if not 1 <= batch_size <= MAX_MPUB_BODIES:
        raise ValueError(f"batch_size must be 1..{MAX_MPUB_BODIES}, got {batch_size}")
    if options.dedup_id is not None:
        raise ValueError("mpub takes no dedup_id: publish one by one to deduplicate")
    extra = options.to_fields()
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
            requests.append(_publish_batch(queue, batch, extra))
            batch, size = [], 0
        batch.append(data)
        size += cost
    if batch:
        requests.append(_publish_batch(queue, batch, extra))
    return requests


def _messages(reply: dict[str, Any]) -> list[Message]:
    return [Message.from_wire(m) for m in reply_field(reply, "msgs", list)]


def get(queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1) -> Request[list[Message]]:
    """`get`: lease up to `max` messages for `lease_s` seconds, waiting up to `wait_s` seconds."""
    return Request(
        request_fields("get", queue=queue, lease_s=lease_s, wait_s=wait_s, max=max),
        _messages,
        wait_s=float(wait_s or 0.0),
    )


def ack(receipt: ReceiptLike) -> Request[None]:
    """`ack`: the delivery is done."""
    return Request(request_fields("ack", receipt=to_receipt(receipt)), lambda reply: None)


def ack_many(receipts: Sequence[str]) -> Request[AckResult]:
    """Batch `ack` of 1..10,000 receipt strings: one commit; the reply says which ones failed."""

    def parse(reply: dict[str, Any]) -> AckResult:
        acked: int = reply_field(reply, "acked", int)
        failed = tuple(AckFailure.from_wire(f) for f in reply_field(reply, "failed", list))
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


def nack(receipt: ReceiptLike, delay_s: float | None = None, error: str | None = None) -> Request[None]:
    """`nack`: give the delivery back, now or after `delay_s` seconds; `error` says why."""
    return Request(
        request_fields("nack", receipt=to_receipt(receipt), delay_s=delay_s, error=error), lambda reply: None
    )


def touch(receipt: ReceiptLike, lease_s: float | None = None) -> Request[float]:
    """`touch`: the lease ends `lease_s` seconds from now; the reply gives that length."""
    return Request(
        request_fields("touch", receipt=to_receipt(receipt), lease_s=lease_s),
        lambda reply: float(reply_field(reply, "lease_s", (int, float))),
    )


def queues() -> Request[list[str]]:
    """`queues`: every queue name, sorted."""

    def parse(reply: dict[str, Any]) -> list[str]:
        names = reply_field(reply, "queues", list)
        if not all(isinstance(n, str) for n in names):
            raise ProtocolError(f"reply field 'queues' is not a list of str: {names!r}")
        return list(names)

    return Request(request_fields("queues"), parse)


def stats(queue: str | None = None) -> Request[dict[str, Any]]:
    """`stats`: `{"server": {...}, "queues": {name: {...}}}`, for one queue or all."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "server", dict)
        reply_field(reply, "queues", dict)
        return result_fields(reply)

    return Request(request_fields("stats", queue=queue), parse)


def quit() -> Request[None]:
    """`quit`: goodbye; the broker then closes the connection and ends the session, if any."""
    return Request(request_fields("quit"), lambda reply: None)


def hello(consumer: str, heartbeat_s: float | None = None, session: str | None = None) -> Request[Session]:
    """`hello`: start a consumer session, or resume the one whose token is `session`.

    `heartbeat_s` is the heartbeat interval asked for, in seconds (the broker's default if None).
    """
    return Request(
        request_fields("hello", consumer=consumer, heartbeat_s=heartbeat_s, session=session),
        lambda reply: Session.from_wire(reply, consumer),
    )


def heartbeat() -> Request[None]:
    """`heartbeat`: a sign of life for the connection's session."""
    return Request(request_fields("heartbeat"), lambda reply: None)


def join(queue: str, group: str, prefetch: int | None = None) -> Request[dict[str, Any]]:
    """`join`: the session's consumer joins the queue's group, holding at most `prefetch` leases.

    The reply gives `queue`, `group`, `consumer`, `prefetch` and `members` (the group's size).
    """

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        for name in ("queue", "group", "consumer"):
            reply_field(reply, name, str)
        for name in ("prefetch", "members"):
            reply_field(reply, name, int)
        return result_fields(reply)

    return Request(request_fields("join", queue=queue, group=group, prefetch=prefetch), parse)


def leave(queue: str) -> Request[None]:
    """`leave`: the session's consumer leaves the queue's group (a no-op if not a member)."""
    return Request(request_fields("leave", queue=queue), lambda reply: None)


def subscribe(queue: str, prefetch: int | None = None, lease_s: float | None = None) -> Request[None]:
    """`sub`: the broker pushes messages of `queue`, at most `prefetch` unacked, leased for `lease_s` s."""
    return Request(request_fields("sub", queue=queue, prefetch=prefetch, lease_s=lease_s), lambda reply: None)


def unsubscribe(queue: str) -> Request[None]:
    """`unsub`: no more pushes of `queue`; what was pushed stays leased until acked or nacked."""
    return Request(request_fields("unsub", queue=queue), lambda reply: None)


def monitor(queue: str | None = None) -> Request[None]:
    """`monitor`: the broker pushes the events of `queue` (of every queue if None)."""
    return Request(request_fields("monitor", queue=queue), lambda reply: None)
