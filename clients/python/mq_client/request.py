"""A request and its reply, sans-IO: the pieces every operation of protocol.md 2.3 is made of.

`Request` pairs the map to send with the function that reads a successful reply; a `Batch` is
an operation sent as several pipelined requests. The helpers build request maps, check reply
fields (`ProtocolError` when the broker says something the protocol does not allow) and turn
bodies and receipts into their wire form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from mq_client.errors import OutcomeUnknown, ProtocolError, error_from_reply
from mq_client.message import Message
from mq_client.serializers import CONTENT_TYPE, Encoded

T = TypeVar("T")

Body = bytes | bytearray | memoryview | str
"""A message body: bytes-like, or str (sent as its UTF-8 bytes)."""
Payload = Body | Encoded
"""What a publish takes as a body: a `Body` is sent as it is; an `Encoded` one (`JSON.encode(x)`)
also sends the `content-type` header of its format."""
ReceiptLike = str | Message
"""A receipt string, or the `Message` whose receipt it is."""


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


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """An operation sent as several requests, pipelined on one connection.

    `split(max_frame_bytes)` makes the requests, each frame within that many bytes; `combine`
    turns their parsed replies, in request order, into the caller's value.
    """

    split: Callable[[int], Sequence[Request[Any]]] = field(repr=False)
    combine: Callable[[list[Any]], T] = field(repr=False)


Operation: TypeAlias = Request[T] | Batch[T]
"""What an operation of ops.py or admin_ops.py builds; a client sends it (methods.py)."""


def check_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Return a successful reply; raise its typed error if it failed, `ProtocolError` if odd."""
    ok = reply.get("ok")
    if ok is True:
        return reply
    if ok is False:
        raise error_from_reply(reply)
    raise ProtocolError(f"reply without a boolean 'ok': {reply!r}")


_PUBLISHES = frozenset({"pub", "mpub", "fanout"})
# What a second run would do again: remove (or move) other messages than the first run did.
_NOT_REPEATABLE = frozenset({"purge", "delete", "redrive"})


def outcome_unknown(requests: Sequence[Request[Any]], cause: str) -> OutcomeUnknown:
    """The error for `requests` sent but not answered before the connection dropped (`cause`):
    says whether they may be sent again, and for a publish how to make that safe."""
    ops = {r.fields["op"] for r in requests}
    if any(r.fields["op"] in _PUBLISHES and "dedup_id" not in r.fields for r in requests):
        advice, safe = ("the publish may or may not have been stored, and sending it again may store it "
                        "twice; publish with a dedup_id (publish_dedup) to make a retry safe"), False
    elif ops & _NOT_REPEATABLE:
        advice, safe = "it may or may not have taken effect: look at the queue before sending it again", False
    else:
        advice, safe = "it may or may not have taken effect; sending it again is safe", True
    return OutcomeUnknown(f"{cause} after {'/'.join(sorted(ops))} went out, before its reply: {advice}", safe)


def request_fields(op: str, **fields: Any) -> dict[str, Any]:
    """The map of a request: `op`, then the fields that are not None."""
    # protocol.md 2.3: optional fields may be omitted; omitting keeps frames small and lets
    # the broker apply its defaults.
    return {"op": op, **{k: v for k, v in fields.items() if v is not None}}


def reply_field(reply: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """`reply[name]`, checked to be of `kind` (never a bool); `ProtocolError` if it is not."""
    value = reply.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(f"reply field {name!r} is {value!r}, expected {kind}")
    return value


def reply_int_list(reply: dict[str, Any], name: str) -> list[int]:
    """`reply[name]`, checked to be a list of ints."""
    values = reply_field(reply, name, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ProtocolError(f"reply field {name!r} is not a list of ints: {values!r}")
    return list(values)


def result_fields(reply: dict[str, Any]) -> dict[str, Any]:
    """A successful reply without `rid` and `ok`: the operation's result."""
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


def to_message(body: Payload, headers: Mapping[str, str] | None) -> tuple[bytes, dict[str, str] | None]:
    """The body's bytes and the headers to send with them (None: none). An `Encoded` body adds
    its `content-type`; a `content-type` in `headers` that says otherwise is a ValueError."""
    if isinstance(body, Encoded):
        given = headers.get(CONTENT_TYPE) if headers else None
        if given is not None and given != body.content_type:
            raise ValueError(f"headers say content-type {given!r} but the body is {body.content_type!r}")
        return body.body, {CONTENT_TYPE: body.content_type, **(headers or {})}
    return to_bytes(body), dict(headers) if headers else None


def with_headers(fields: dict[str, Any], headers: dict[str, str] | None) -> dict[str, Any]:
    """A request map with `headers` last, when there are any: frames without stay as they were."""
    return {**fields, "headers": headers} if headers else fields


def to_receipt(receipt: ReceiptLike) -> str:
    """The receipt string of a receipt or a `Message`."""
    if isinstance(receipt, Message):
        return receipt.receipt
    if isinstance(receipt, str):
        return receipt
    raise TypeError(f"expected a receipt str or a Message, not {type(receipt).__name__}")
