"""The administration and introspection operations of protocol.md 2.3, sans-IO.

Queue settings (`declare`), `purge`, `delete`, `peek`, `redrive`, topic bindings, `explain`
and `history`: like `ops`, each is defined here once and returns the `Request` it sends; both
clients' methods are made from these functions (methods.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mq_client.errors import ProtocolError
from mq_client.message import PeekedMessage
from mq_client.request import Request, reply_field, request_fields, result_fields


def _int_result(name: str) -> Callable[[dict[str, Any]], int]:
    return lambda reply: int(reply_field(reply, name, int))


def _bool_result(name: str) -> Callable[[dict[str, Any]], bool]:
    def parse(reply: dict[str, Any]) -> bool:
        value = reply.get(name)
        if not isinstance(value, bool):
            raise ProtocolError(f"reply field {name!r} is {value!r}, expected a bool")
        return value

    return parse


def _bindings(reply: dict[str, Any]) -> dict[str, list[str]]:
    bindings = reply_field(reply, "bindings", dict)
    for topic, queues in bindings.items():
        if not isinstance(topic, str) or not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            raise ProtocolError(f"reply field 'bindings' is not a map of topic to [queue]: {bindings!r}")
    return {topic: list(queues) for topic, queues in bindings.items()}


def declare(
    queue: str,
    *,
    retention_s: float | None = None,
    lease_s: float | None = None,
    max_deliveries: int | None = None,
    dead_letter: str | None = None,
    dedup_window_s: float | None = None,
) -> Request[dict[str, Any]]:
    """Create `queue` or change the settings given; returns all its settings (protocol.md 4.3).

    `retention_s`: age in seconds after which messages are removed, consumed or not;
    `lease_s`: the default lease of a `get`, in seconds; `max_deliveries`: after that many
    deliveries a message that comes back goes to the dead-letter queue (0: no limit);
    `dead_letter`: that queue (default `<queue>.dlq`); `dedup_window_s`: how long, in
    seconds, a `dedup_id` is remembered. None leaves a setting as it is.
    """

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "queue", str)
        return result_fields(reply)

    fields = request_fields(
        "declare",
        queue=queue,
        retention_s=retention_s,
        lease_s=lease_s,
        max_deliveries=max_deliveries,
        dead_letter=dead_letter,
        dedup_window_s=dedup_window_s,
    )
    return Request(fields, parse)


def purge(queue: str) -> Request[int]:
    """Remove every message of `queue`, leased ones included; returns how many."""
    return Request(request_fields("purge", queue=queue), _int_result("purged"))


def delete(queue: str) -> Request[int]:
    """Purge `queue` and forget it, its settings and bindings; returns the messages removed.

    Raises `NotFound` if there is no such queue.
    """
    return Request(request_fields("delete", queue=queue), _int_result("deleted"))


def peek(queue: str, count: int | None = None) -> Request[list[PeekedMessage]]:
    """The next `count` (1..1,000; broker default 10) ready messages of `queue`, in delivery
    order, not leased."""
    return Request(
        request_fields("peek", queue=queue, count=count),
        lambda reply: [PeekedMessage.from_wire(m) for m in reply_field(reply, "msgs", list)],
    )


def redrive(queue: str, count: int | None = None, to: str | None = None) -> Request[int]:
    """Move up to `count` (broker default 1,000) messages of the dead-letter queue `queue` back
    to where they came from, or to `to`; returns how many moved."""
    return Request(request_fields("redrive", queue=queue, count=count, to=to), _int_result("redriven"))


def bind(topic: str, queue: str) -> Request[bool]:
    """Give `queue` a copy of every `fanout` to `topic`; False if it was bound already."""
    return Request(request_fields("bind", topic=topic, queue=queue), _bool_result("changed"))


def unbind(topic: str, queue: str) -> Request[bool]:
    """Undo a `bind`; False if `queue` was not bound to `topic`."""
    return Request(request_fields("unbind", topic=topic, queue=queue), _bool_result("changed"))


def bindings(topic: str | None = None) -> Request[dict[str, list[str]]]:
    """Topic -> its bound queues (sorted), for `topic` or for every topic."""
    return Request(request_fields("bindings", topic=topic), _bindings)


def explain(msg_id: int) -> Request[dict[str, Any]]:
    """Why message `msg_id` is (not) being delivered: `state` (`ready`, `delayed`, `leased`,
    `gone`), `why` (a sentence) and what applies: `holder`, `lease_deadline`, `ready_at`,
    `last_error`, ... (protocol.md 2.3)."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "state", str)
        reply_field(reply, "why", str)
        return result_fields(reply)

    return Request(request_fields("explain", msg_id=msg_id), parse)


def history(msg_id: int) -> Request[list[dict[str, Any]]]:
    """The life of message `msg_id` from the broker's log, oldest first: maps with `at`
    (Unix s), `event` (`published`, `leased`, `nacked`, `acked`, ...) and its fields."""

    def parse(reply: dict[str, Any]) -> list[dict[str, Any]]:
        events = reply_field(reply, "events", list)
        if not all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in events):
            raise ProtocolError(f"reply field 'events' is not a list of events: {events!r:.200}")
        return list(events)

    return Request(request_fields("history", msg_id=msg_id), parse)


def cluster() -> Request[dict[str, Any]]:
    """The cluster's slot map (protocol.md 11): `cluster` (its name; None from a broker that is
    not in one), `node`, `map_epoch`, `slots` as [first, last, node, addr] ranges and `brokers`
    (node -> `addr`, `leaving`, `slots`)."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "map_epoch", int)
        reply_field(reply, "slots", list)
        return result_fields(reply)

    return Request(request_fields("cluster"), parse)
