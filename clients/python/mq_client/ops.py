"""The operations of protocol.md section 2.3 that move messages, sans-IO (the administration
and introspection ones are in `admin_ops`).

Each operation is defined here once: its parameters, their defaults and its docstring, and the
`Request` it sends (the map without `rid`, which the client assigns, and the function that
turns the reply into the caller's value), or the `Batch` of requests for the many-at-once ones.
Both clients' methods are made from these functions (methods.py), so a field is added here and
nowhere else. The requests that only the clients' session and push machinery send (`hello`,
`sub`, `unsub`, `monitor`, `quit`) are at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from mq_client.errors import FrameTooLarge, ProtocolError
from mq_client.limits import MAX_ACK_RECEIPTS, MAX_MPUB_BODIES
from mq_client.message import AckFailure, AckResult, Message, PublishResult
from mq_client.request import (
    Batch,
    Payload,
    ReceiptLike,
    Request,
    reply_field,
    reply_int_list,
    request_fields,
    result_fields,
    to_message,
    to_receipt,
    with_headers,
)
from mq_client.session import Session

DEFAULT_BATCH_SIZE = 1_000
"""Bodies per `mpub` frame that `publish_many` sends when not told otherwise."""
_MPUB_OVERHEAD_BYTES = 192
"""Generous msgpack size of an `mpub` map without its queue name and bodies, publish options
included, in bytes."""
_ACK_OVERHEAD_BYTES = 64
"""Generous msgpack size of a batch `ack` map without its receipts, in bytes."""
_BIN_HEADER_BYTES = 5
"""Largest msgpack bin header (bin32), in bytes."""
_STR_HEADER_BYTES = 5
"""Largest msgpack str header (str32), in bytes."""


class BatchOptions(TypedDict, total=False):
    """The publish options of protocol.md 2.3 that apply to every message of a batch; None (or
    leaving one out) gives the broker's default.

    `priority` is 0..9 (higher first, default 0), `delay_s` seconds of invisibility,
    `not_before` a Unix time before which the message stays invisible (the later of the two
    counts), `ttl_s` the age in seconds after which it is never delivered.
    """

    priority: int | None
    delay_s: float | None
    not_before: float | None
    ttl_s: float | None


class PublishOptions(BatchOptions, total=False):
    """`BatchOptions` and `dedup_id`: up to 128 bytes naming one publish, so that a publish the
    queue saw with that id within its dedup window stores nothing (protocol.md 4.4)."""

    dedup_id: str | None


_OPTION_NAMES = tuple(PublishOptions.__annotations__)  # declared order: frames do not depend on the caller's


def _option_fields(options: BatchOptions) -> dict[str, Any]:
    return {name: value for name in _OPTION_NAMES if (value := options.get(name)) is not None}


def ping() -> Request[None]:
    """Round trip to the broker."""
    return Request(request_fields("ping"), lambda reply: None)


HeaderMap = Mapping[str, str]
"""Headers to publish: names (1..128 of A-Z a-z 0-9 _ - . :) to str values (protocol.md 7)."""


def _pub(
    queue: str, body: Payload, key: str | None, headers: HeaderMap | None, options: PublishOptions
) -> dict[str, Any]:
    data, sent = to_message(body, headers)
    fields = {**request_fields("pub", queue=queue, body=data, key=key), **_option_fields(options)}
    return with_headers(fields, sent)


def publish(
    queue: str,
    body: Payload,
    key: str | None = None,
    headers: HeaderMap | None = None,
    **options: Unpack[PublishOptions],
) -> Request[int]:
    """Publish one message; returns its msg_id once the broker has committed it.

    `body` is bytes or str, sent as it is, or a serializer's `JSON.encode(value)`, which also
    sends its `content-type` header. `headers` (a map of str to str: a content type, a W3C
    `traceparent`, your own ids) come back with every delivery of the message. `key` makes it a
    keyed message (protocol.md 4.2). Options (`PublishOptions`): `priority`
    0..9 (higher first, default 0); `delay_s` seconds, or `not_before` a Unix time, before it
    can be delivered; `ttl_s`: never delivered once that many seconds old; `dedup_id`: a
    publish the queue saw with that id within its dedup window stores nothing and returns the
    first message's id (see `publish_dedup` to know whether it did).
    """
    return Request(_pub(queue, body, key, headers, options), lambda reply: int(reply_field(reply, "msg_id", int)))


def publish_dedup(
    queue: str,
    body: Payload,
    dedup_id: str,
    key: str | None = None,
    headers: HeaderMap | None = None,
    **options: Unpack[BatchOptions],
) -> Request[PublishResult]:
    """Publish one message at most once per `dedup_id` within the queue's dedup window.

    Returns its msg_id and `duplicate`: True when the queue had already seen `dedup_id`, in
    which case nothing was stored and msg_id is the first message's. Safe to retry after a lost
    confirmation (protocol.md 4.4). `headers` and the options are those of `publish`.
    """

    def parse(reply: dict[str, Any]) -> PublishResult:
        duplicate = reply.get("duplicate", False)
        if not isinstance(duplicate, bool):
            raise ProtocolError(f"reply field 'duplicate' is {duplicate!r}, expected a bool")
        return PublishResult(reply_field(reply, "msg_id", int), duplicate)

    with_id: PublishOptions = {**options, "dedup_id": dedup_id}
    return Request(_pub(queue, body, key, headers, with_id), parse)


def publish_many(
    queue: str,
    bodies: Iterable[Payload],
    batch_size: int = DEFAULT_BATCH_SIZE,
    headers: Iterable[HeaderMap | None] | None = None,
    **options: Unpack[BatchOptions],
) -> Batch[list[int]]:
    """Publish many messages, pipelined; returns their msg_ids in the order of `bodies`.

    Bodies go out as `mpub` frames of at most `batch_size` bodies (1..10,000), all sent without
    waiting for replies, every message with the options given (those of `publish` but
    `dedup_id`). `headers`, if given, holds each message's headers (or None), one per body, in
    the same order. If any batch fails, its error is raised after every batch has answered; the
    other batches may have been stored (the broker commits each `mpub` on its own).
    """

    def combine(batches: list[list[int]]) -> list[int]:
        return [msg_id for ids in batches for msg_id in ids]

    def split(max_frame_bytes: int) -> list[Request[list[int]]]:
        return publish_batches(queue, bodies, batch_size, max_frame_bytes, options, headers=headers)

    return Batch(split, combine)


def fanout(
    topic: str,
    body: Payload,
    key: str | None = None,
    headers: HeaderMap | None = None,
    **options: Unpack[PublishOptions],
) -> Request[dict[str, int]]:
    """Publish one copy to every queue bound to `topic` (`bind`); returns queue -> msg_id.

    Each copy is consumed and acked on its own, with the same headers; a topic with no bound
    queue stores nothing and returns {}. `headers` and the options are those of `publish`.
    """

    def parse(reply: dict[str, Any]) -> dict[str, int]:
        ids = reply_field(reply, "msg_ids", dict)
        if not all(isinstance(q, str) and isinstance(i, int) and not isinstance(i, bool) for q, i in ids.items()):
            raise ProtocolError(f"reply field 'msg_ids' is not a map of queue to msg id: {ids!r}")
        return dict(ids)

    data, sent = to_message(body, headers)
    fields = {**request_fields("fanout", topic=topic, body=data, key=key), **_option_fields(options)}
    return Request(with_headers(fields, sent), parse)


def _publish_batch(
    queue: str, bodies: list[bytes], options: dict[str, Any], headers: list[dict[str, str] | None]
) -> Request[list[int]]:
    def parse(reply: dict[str, Any]) -> list[int]:
        ids = reply_int_list(reply, "msg_ids")
        if len(ids) != len(bodies):
            raise ProtocolError(f"mpub of {len(bodies)} bodies answered with {len(ids)} msg_ids")
        return ids

    fields = {**request_fields("mpub", queue=queue, bodies=bodies), **options}
    return Request({**fields, "headers": headers} if any(headers) else fields, parse)


def _headers_bytes(headers: dict[str, str] | None) -> int:
    """Generous msgpack size of one message's headers (nil when None), in bytes."""
    if headers is None:
        return 1
    return _STR_HEADER_BYTES + sum(
        len(k.encode("utf-8", "replace")) + len(v.encode("utf-8", "replace")) + 2 * _STR_HEADER_BYTES
        for k, v in headers.items()
    )


def publish_batches(
    queue: str,
    bodies: Iterable[Payload],
    batch_size: int,
    max_frame_bytes: int,
    options: BatchOptions | None = None,
    *,
    headers: Iterable[HeaderMap | None] | None = None,
) -> list[Request[list[int]]]:
    """Split `bodies` into `mpub` requests of at most `batch_size` bodies each, all with `options`,
    each body with its entry of `headers` (one per body, or None for none at all).

    A batch is also cut early when it would exceed `max_frame_bytes` bytes, so large bodies do
    not turn a batch into a frame the broker rejects (and closes the connection over). A body
    too large for any frame raises `FrameTooLarge` here, before anything is sent. `mpub` takes
    no `dedup_id`, and `headers` of another length than `bodies` is refused (ValueError).
    """
    if not 1 <= batch_size <= MAX_MPUB_BODIES:
        raise ValueError(f"batch_size must be 1..{MAX_MPUB_BODIES}, got {batch_size}")
    extra = _option_fields(options or {})
    if "dedup_id" in extra:
        raise ValueError("mpub takes no dedup_id: publish one by one to deduplicate")
    budget = max_frame_bytes - _MPUB_OVERHEAD_BYTES - len(queue.encode("utf-8", "replace"))
    requests: list[Request[list[int]]] = []
    batch: list[bytes] = []
    batch_headers: list[dict[str, str] | None] = []
    size = 0
    each: Iterable[HeaderMap | None] = itertools.repeat(None) if headers is None else headers
    for body, given in zip(bodies, each, strict=headers is not None):
        data, sent = to_message(body, given)
        cost = len(data) + _BIN_HEADER_BYTES + _headers_bytes(sent)
        if cost > budget:
            raise FrameTooLarge(
                FrameTooLarge.CODE,
                f"a body of {len(data)} bytes does not fit in max_frame_bytes={max_frame_bytes}; nothing sent",
                False,
            )
        if batch and (len(batch) == batch_size or size + cost > budget):
            requests.append(_publish_batch(queue, batch, extra, batch_headers))
            batch, batch_headers, size = [], [], 0
        batch.append(data)
        batch_headers.append(sent)
        size += cost
    if batch:
        requests.append(_publish_batch(queue, batch, extra, batch_headers))
    return requests


def _messages(reply: dict[str, Any]) -> list[Message]:
    return [Message.from_wire(m) for m in reply_field(reply, "msgs", list)]


def get(queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1) -> Request[list[Message]]:
    """Lease up to `max` ready messages (1..1,000) for `lease_s` seconds (queue default if None).

    With `wait_s`, waits up to that many seconds for a message; returns [] if none came.
    """
    return Request(
        request_fields("get", queue=queue, lease_s=lease_s, wait_s=wait_s, max=max),
        _messages,
        wait_s=float(wait_s or 0.0),
    )


def lease(queue: str, lease_s: float | None = None, wait_s: float | None = None) -> Request[Message | None]:
    """Lease one message, or return None if none is ready (within `wait_s` seconds)."""
    one = get(queue, lease_s, wait_s, 1)

    def parse(reply: dict[str, Any]) -> Message | None:
        msgs = one.parse(reply)
        return msgs[0] if msgs else None

    return Request(one.fields, parse, one.wait_s)


def ack(receipt: ReceiptLike) -> Request[None]:
    """Acknowledge a delivery: the message is gone for good once this returns."""
    return Request(request_fields("ack", receipt=to_receipt(receipt)), lambda reply: None)


def ack_many(receipts: Iterable[ReceiptLike]) -> Batch[AckResult]:
    """Acknowledge many deliveries at once: receipts, or the `Message`s themselves.

    Sent as batch `ack` requests of at most 10,000 receipts, pipelined; each is one commit on
    the broker. A receipt that cannot be acked (`LEASE_LOST`, `NOT_YOUR_LEASE`, ...) does not
    fail the call: it is listed in the result's `failed`, and the others are acked. If a whole
    request fails (say `ConnectionLost`), its error is raised after every request has answered;
    the other requests' acks may have been committed. No receipts, no request.
    """
    return Batch(lambda max_frame_bytes: ack_batches(receipts, max_frame_bytes), AckResult.combine)


def ack_batch(receipts: Sequence[str]) -> Request[AckResult]:
    """One batch `ack` of 1..10,000 receipt strings: one commit; the reply says which failed."""

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
            requests.append(ack_batch(batch))
            batch, size = [], 0
        batch.append(text)
        size += cost
    if batch:
        requests.append(ack_batch(batch))
    return requests


def nack(receipt: ReceiptLike, delay_s: float | None = None, error: str | None = None) -> Request[None]:
    """Give a delivery back: ready again now, or after `delay_s` seconds.

    `error` says why; the broker keeps it with the message (`peek`, `explain`, `history`).
    """
    return Request(
        request_fields("nack", receipt=to_receipt(receipt), delay_s=delay_s, error=error), lambda reply: None
    )


def touch(receipt: ReceiptLike, lease_s: float | None = None) -> Request[float]:
    """Extend a lease to `lease_s` seconds from now (queue default if None); returns that length."""
    return Request(
        request_fields("touch", receipt=to_receipt(receipt), lease_s=lease_s),
        lambda reply: float(reply_field(reply, "lease_s", (int, float))),
    )


def queues() -> Request[list[str]]:
    """The names of all queues, sorted."""

    def parse(reply: dict[str, Any]) -> list[str]:
        names = reply_field(reply, "queues", list)
        if not all(isinstance(n, str) for n in names):
            raise ProtocolError(f"reply field 'queues' is not a list of str: {names!r}")
        return list(names)

    return Request(request_fields("queues"), parse)


def stats(queue: str | None = None) -> Request[dict[str, Any]]:
    """Broker statistics: `{"server": {...}, "queues": {name: {...}}}` (protocol.md section 6)."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "server", dict)
        reply_field(reply, "queues", dict)
        return result_fields(reply)

    return Request(request_fields("stats", queue=queue), parse)


def heartbeat() -> Request[None]:
    """A sign of life for the session; the client already sends these when idle."""
    return Request(request_fields("heartbeat"), lambda reply: None)


def join(queue: str, group: str, prefetch: int | None = None) -> Request[dict[str, Any]]:
    """Join the consumer group `group` of `queue`, holding at most `prefetch` leases (1..10,000).

    Returns the broker's answer: `queue`, `group`, `consumer`, `prefetch`, `members`. Needs
    `hello` first (`NoSession`); `NameTaken` if a live member of the group already uses this
    consumer name. Members then `get` (or `consume`) as usual; keyed messages go only to the
    member that owns the key.
    """

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        for name in ("queue", "group", "consumer"):
            reply_field(reply, name, str)
        for name in ("prefetch", "members"):
            reply_field(reply, name, int)
        return result_fields(reply)

    return Request(request_fields("join", queue=queue, group=group, prefetch=prefetch), parse)


def leave(queue: str) -> Request[None]:
    """Leave the group of `queue` (nothing happens if not a member); needs `hello` first."""
    return Request(request_fields("leave", queue=queue), lambda reply: None)


# -- sent by the clients' session and push machinery ------------------------------------------


def hello(consumer: str, heartbeat_s: float | None = None, session: str | None = None) -> Request[Session]:
    """`hello`: start a consumer session, or resume the one whose token is `session`.

    `heartbeat_s` is the heartbeat interval asked for, in seconds (the broker's default if None).
    """
    return Request(
        request_fields("hello", consumer=consumer, heartbeat_s=heartbeat_s, session=session),
        lambda reply: Session.from_wire(reply, consumer),
    )


def subscribe(queue: str, prefetch: int | None = None, lease_s: float | None = None) -> Request[None]:
    """`sub`: the broker pushes messages of `queue`, at most `prefetch` unacked, leased for `lease_s` s."""
    return Request(request_fields("sub", queue=queue, prefetch=prefetch, lease_s=lease_s), lambda reply: None)


def unsubscribe(queue: str) -> Request[None]:
    """`unsub`: no more pushes of `queue`; what was pushed stays leased until acked or nacked."""
    return Request(request_fields("unsub", queue=queue), lambda reply: None)


def monitor(queue: str | None = None) -> Request[None]:
    """`monitor`: the broker pushes the events of `queue` (of every queue if None)."""
    return Request(request_fields("monitor", queue=queue), lambda reply: None)


def auth(user: str, secret: str) -> Request[str]:
    """`auth`: act as `user` of the broker's users file; returns the user name."""
    return Request(request_fields("auth", user=user, secret=secret), lambda reply: reply_field(reply, "user", str))


def quit() -> Request[None]:
    """`quit`: goodbye; the broker then closes the connection and ends the session, if any."""
    return Request(request_fields("quit"), lambda reply: None)
