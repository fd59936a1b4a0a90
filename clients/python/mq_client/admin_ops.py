"""The administration and introspection operations of protocol.md 2.3, sans-IO.

Queue settings (`declare`), `purge`, `delete`, `peek`, `redrive`, topic bindings, `explain`
and `history`: like `ops`, each function returns a `Request` both clients send.
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
    """`declare`: change the settings given (protocol.md 4.3); the reply gives all of them."""

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
    """`purge`: remove every message of `queue`, leased ones included; the reply counts them."""
    return Request(request_fields("purge", queue=queue), _int_result("purged"))


def delete(queue: str) -> Request[int]:
    """`delete`: purge `queue` and forget it; the reply counts the messages removed."""
    return Request(request_fields("delete", queue=queue), _int_result("deleted"))


def peek(queue: str, count: int | None = None) -> Request[list[PeekedMessage]]:
    """`peek`: the next `count` (1..1,000) ready messages of `queue`, not leased."""
    return Request(
        request_fields("peek", queue=queue, count=count),
        lambda reply: [PeekedMessage.from_wire(m) for m in reply_field(reply, "msgs", list)],
    )


def redrive(queue: str, count: int | None = None, to: str | None = None) -> Request[int]:
    """`redrive`: move up to `count` messages of the dead-letter queue `queue` back (or to `to`)."""
    return Request(request_fields("redrive", queue=queue, count=count, to=to), _int_result("redriven"))


def bind(topic: str, queue: str) -> Request[bool]:
    """`bind`: `queue` gets a copy of every `fanout` to `topic`; the reply says if that is new."""
    return Request(request_fields("bind", topic=topic, queue=queue), _bool_result("changed"))


def unbind(topic: str, queue: str) -> Request[bool]:
    """`unbind`: undo a `bind`; the reply says whether there was one."""
    return Request(request_fields("unbind", topic=topic, queue=queue), _bool_result("changed"))


def bindings(topic: str | None = None) -> Request[dict[str, list[str]]]:
    """`bindings`: topic -> sorted queues, of one topic or all."""
    return Request(request_fields("bindings", topic=topic), _bindings)


def explain(msg_id: int) -> Request[dict[str, Any]]:
    """`explain`: the message's `state` and, in `why`, a sentence on why it is (not) delivered."""

    def parse(reply: dict[str, Any]) -> dict[str, Any]:
        reply_field(reply, "state", str)
        reply_field(reply, "why", str)
        return result_fields(reply)

    return Request(request_fields("explain", msg_id=msg_id), parse)


def history(msg_id: int) -> Request[list[dict[str, Any]]]:
    """`history`: the message's events from the log, oldest first."""

    def parse(reply: dict[str, Any]) -> list[dict[str, Any]]:
        events = reply_field(reply, "events", list)
        if not all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in events):
            raise ProtocolError(f"reply field 'events' is not a list of events: {events!r:.200}")
        return list(events)

    return Request(request_fields("history", msg_id=msg_id), parse)
