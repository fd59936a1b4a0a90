"""Binary mode: each op's request map to its command (protocol.md 2.3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mq.codec.commands import (
    PLAIN,
    Ack,
    AckMany,
    Bind,
    Bindings,
    Command,
    Declare,
    DeleteQueue,
    Explain,
    Fanout,
    Get,
    Heartbeat,
    Hello,
    History,
    Join,
    Leave,
    ListQueues,
    Monitor,
    Nack,
    Peek,
    Ping,
    Publish,
    PublishMany,
    PublishOptions,
    Purge,
    Quit,
    Receipt,
    Redrive,
    Stats,
    Subscribe,
    Touch,
    Unmonitor,
    Unsubscribe,
    check_body,
    check_key,
    check_name,
    check_queue,
)
from mq.errors import bad_request

Map = dict[str, Any]
OPTION_FIELDS = ("priority", "delay_s", "ttl_s", "dedup_id", "not_before")


def _options(m: Map) -> PublishOptions:
    given = {f: m[f] for f in OPTION_FIELDS if m.get(f) is not None}
    return PublishOptions(**given) if given else PLAIN


def _receipts(value: object) -> tuple[Receipt, ...]:
    if not isinstance(value, list):
        raise bad_request("receipts must be a list of receipt strings")
    return tuple(Receipt.parse(r) for r in value)


def _bodies(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise bad_request("bodies must be a list of bin")
    return tuple(check_body(b) for b in value)


def _q(m: Map) -> str:
    return check_queue(m.get("queue"))


def _or(m: Map, field: str, default: Any) -> Any:
    value = m.get(field)
    return default if value is None else value  # types are checked by the command itself


def _ack(m: Map, rid: int | None) -> Command:
    if "receipts" in m:
        return AckMany(_receipts(m.get("receipts")), rid)
    return Ack(Receipt.parse(m.get("receipt")), rid)


BUILDERS: dict[str, Callable[[Map, int | None], Command]] = {
    "ping": lambda m, rid: Ping(rid),
    "pub": lambda m, rid: Publish(_q(m), check_body(m.get("body")), check_key(m.get("key")),
                                  rid, _options(m)),
    "mpub": lambda m, rid: PublishMany(_q(m), _bodies(m.get("bodies")), rid, _options(m)),
    "fanout": lambda m, rid: Fanout(check_name("topic", m.get("topic")),
                                    check_body(m.get("body")), check_key(m.get("key")), rid,
                                    _options(m)),
    "get": lambda m, rid: Get(_q(m), m.get("lease_s"), _or(m, "wait_s", 0.0), _or(m, "max", 1),
                              rid),
    "ack": _ack,
    "nack": lambda m, rid: Nack(Receipt.parse(m.get("receipt")), _or(m, "delay_s", 0.0), rid,
                                m.get("error")),
    "touch": lambda m, rid: Touch(Receipt.parse(m.get("receipt")), m.get("lease_s"), rid),
    "declare": lambda m, rid: Declare(_q(m), m.get("retention_s"), m.get("lease_s"), rid,
                                      m.get("max_deliveries"), m.get("dead_letter"),
                                      m.get("dedup_window_s")),
    "queues": lambda m, rid: ListQueues(rid),
    "stats": lambda m, rid: Stats(m.get("queue"), rid),
    "quit": lambda m, rid: Quit(rid),
    "hello": lambda m, rid: Hello(check_name("consumer", m.get("consumer")),
                                  m.get("heartbeat_s"), m.get("session"), rid),
    "heartbeat": lambda m, rid: Heartbeat(rid),
    "join": lambda m, rid: Join(_q(m), check_name("group", m.get("group")), m.get("prefetch"),
                                rid),
    "leave": lambda m, rid: Leave(_q(m), rid),
    "purge": lambda m, rid: Purge(_q(m), rid),
    "delete": lambda m, rid: DeleteQueue(_q(m), rid),
    "peek": lambda m, rid: Peek(_q(m), _or(m, "count", 10), rid),
    "redrive": lambda m, rid: Redrive(_q(m), _or(m, "count", 1000), m.get("to"), rid),
    "bind": lambda m, rid: Bind(check_name("topic", m.get("topic")), _q(m), False, rid),
    "unbind": lambda m, rid: Bind(check_name("topic", m.get("topic")), _q(m), True, rid),
    "bindings": lambda m, rid: Bindings(m.get("topic"), rid),
    "explain": lambda m, rid: Explain(m.get("msg_id"), rid),  # type: ignore[arg-type]
    "history": lambda m, rid: History(m.get("msg_id"), rid),  # type: ignore[arg-type]
    "monitor": lambda m, rid: Monitor(m.get("queue"), rid),
    "unmonitor": lambda m, rid: Unmonitor(rid),
    "sub": lambda m, rid: Subscribe(_q(m), _or(m, "prefetch", 100), m.get("lease_s"), rid),
    "unsub": lambda m, rid: Unsubscribe(_q(m), rid),
}
