"""Text mode replies: the result fields of a command (the same a binary reply carries) as lines
a person can read. The last line of a reply starts with `+`, `-ERR ` or `MSG `; lines before it
never do. Pushed lines (`MSG` for SUB, `EVENT` for MONITOR) are made here too."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mq.codec.commands import (
    AckMany,
    Bind,
    Bindings,
    Command,
    Declare,
    DeleteQueue,
    Explain,
    Fanout,
    Get,
    Hello,
    Help,
    History,
    Join,
    ListQueues,
    Monitor,
    Peek,
    Ping,
    Publish,
    Purge,
    Quit,
    Redrive,
    Stats,
    Subscribe,
    Touch,
)
from mq.codec.text import USAGE, escape_body
from mq.errors import MQError

EOL = b"\r\n"
Result = dict[str, Any]


def _line(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape") + EOL


def _lines(body: list[str], last: str) -> bytes:
    return b"".join(_line(line) for line in body) + _line(last)


def _seconds(value: float) -> str:
    return f"{value:g}"


def _number_text(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def clock_text(unix_s: float) -> str:
    """Unix seconds as UTC time of day with milliseconds, for people reading a log."""
    millis = int(unix_s % 1 * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix_s)) + f".{millis:03d}Z"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left-aligned, the others (numbers) right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [fmt(headers)] + [fmt(r) for r in rows]


STATS_COLUMNS = [
    "ready", "delayed", "leased", "published", "acked", "expired", "released", "dead_lettered",
    "dropped", "ttl_expired", "deduplicated", "oldest_ready_s",
]
GROUP_COLUMNS = ["leases", "prefetch", "keys", "ring_share", "last_heartbeat_s_ago"]


def stats_table(queues: dict[str, dict[str, Any]]) -> list[str]:
    rows = [[name, *(_number_text(q[c]) for c in STATS_COLUMNS)]
            for name, q in sorted(queues.items())]
    return table(["queue", *STATS_COLUMNS], rows)


def group_table(queues: dict[str, dict[str, Any]]) -> list[str]:
    """One row per member of each queue's consumer group; empty when there are no groups."""
    rows = []
    for name, q in sorted(queues.items()):
        group = q.get("group")
        if not group:
            continue
        for consumer, m in group["members"].items():
            rows.append([f"{name}/{group['group']}", consumer,
                         *(_number_text(m[c]) for c in GROUP_COLUMNS)])
    return table(["queue/group", "consumer", *GROUP_COLUMNS], rows) if rows else []


def format_message(m: dict[str, Any]) -> str:
    return f"MSG {m['receipt']} {m['queue']} {m['deliveries']} {escape_body(m['body'])}"


def format_event(e: dict[str, Any]) -> str:
    """A MONITOR line: EVENT <time> <queue> <msg_id> <event> [name=value ...]."""
    extra = " ".join(f"{k}={_field(v)}" for k, v in e.items()
                     if k not in ("at", "queue", "msg_id", "event") and v is not None)
    return (f"EVENT {clock_text(e['at'])} {e.get('queue') or '-'} {e['msg_id']} {e['event']}"
            + (f" {extra}" if extra else ""))


def _field(value: object) -> str:
    if isinstance(value, bytes):
        return escape_body(value)
    text = _number_text(value)
    return text if " " not in text else repr(text)


def _peek_line(m: dict[str, Any]) -> str:
    parts = [f"#{m['msg_id']}", f"deliveries={m['deliveries']}", f"priority={m['priority']}"]
    if m.get("key") is not None:
        parts.append(f"key={m['key']}")
    if m.get("dead_reason"):
        parts.append(f"dead_from={m['dead_from']} reason={m['dead_reason']!r}")
    if m.get("last_error"):
        parts.append(f"last_error={m['last_error']!r}")
    parts.append(f"body={escape_body(m['body'])}")
    return " ".join(parts)


def _history_line(e: dict[str, Any]) -> str:
    details = " ".join(f"{k}={_field(v)}" for k, v in e.items() if k not in ("at", "event"))
    return f"{clock_text(e['at'])} {e['event']}" + (f" {details}" if details else "")


def _fanout(r: Result) -> bytes:
    ids = r["msg_ids"]
    copies = " ".join(f"{q}={i}" for q, i in ids.items())
    return _line(f"+OK {len(ids)} copies: {copies}" if ids else
                 "+OK 0 copies: no queue is bound to this topic (BIND <topic> <queue>)")


def _explain(r: Result) -> bytes:
    body = [f"{k}: {_number_text(v)}" for k, v in r.items() if k != "why"]
    return _lines(body, f"+OK {r['why']}")


def _settings(r: Result) -> str:
    return " ".join(f"{k}={_number_text(r[k]) if not isinstance(r[k], float) else _seconds(r[k])}"
                    for k in ("retention_s", "lease_s", "max_deliveries", "dead_letter",
                              "dedup_window_s") if k in r)


_FORMATS: dict[type, Callable[[Result], bytes]] = {
    Ping: lambda r: _line("+PONG"),
    Publish: lambda r: _line(f"+OK {r['msg_id']}" + (" duplicate" if r.get("duplicate") else "")),
    Fanout: _fanout,
    Get: lambda r: _line(format_message(r["msgs"][0])) if r["msgs"] else _line("+EMPTY"),
    AckMany: lambda r: _lines([f"failed {f['receipt']} {f['code']} {f['message']}"
                               for f in r["failed"]],
                              f"+OK {r['acked']} acked, {len(r['failed'])} failed"),
    Touch: lambda r: _line(f"+OK {_seconds(r['lease_s'])}"),
    Declare: lambda r: _line(f"+OK {r['queue']} {_settings(r)}"),
    ListQueues: lambda r: _lines(r["queues"], f"+OK {len(r['queues'])} queues"),
    Stats: lambda r: _lines(
        stats_table(r["queues"]) + (["", *g] if (g := group_table(r["queues"])) else []),
        f"+OK {len(r['queues'])} queues"),
    Help: lambda r: _lines(list(USAGE.values()), "+OK"),
    Quit: lambda r: _line("+BYE"),
    Hello: lambda r: _line(
        f"+OK session {r['session']} heartbeat_s={_seconds(r['heartbeat_s'])}"
        f" dead_after_s={_seconds(r['dead_after_s'])} grace_s={_seconds(r['grace_s'])}"
        f" resumed={'yes' if r['resumed'] else 'no'}"),
    Join: lambda r: _line(f"+OK joined {r['queue']}/{r['group']} as {r['consumer']}"
                          f" prefetch={r['prefetch']} members={r['members']}"),
    Purge: lambda r: _line(f"+OK purged {r['purged']} messages"),
    DeleteQueue: lambda r: _line(f"+OK deleted {r['queue']} and its {r['deleted']} messages"),
    Peek: lambda r: _lines([_peek_line(m) for m in r["msgs"]], f"+OK {len(r['msgs'])} messages"),
    Redrive: lambda r: _line(f"+OK redriven {r['redriven']} messages"),
    Bind: lambda r: _line(f"+OK {'changed' if r['changed'] else 'unchanged'}: "
                          + ", ".join(f"{t} -> {' '.join(qs) or '(none)'}"
                                      for t, qs in r["bindings"].items())),
    Bindings: lambda r: _lines([f"{t} -> {', '.join(qs)}" for t, qs in r["bindings"].items()],
                               f"+OK {len(r['bindings'])} topics"),
    Explain: _explain,
    History: lambda r: _lines([_history_line(e) for e in r["events"]],
                              f"+OK {len(r['events'])} events"
                              + ("" if r["events"] else " (compacted, or never existed)")),
    Monitor: lambda r: _line(f"+OK monitoring {r['queue'] or 'all queues'}; EVENT lines follow"),
    Subscribe: lambda r: _line(f"+OK subscribed to {r['queue']} prefetch={r['prefetch']};"
                               " MSG lines follow"),
}


def encode_text_reply(command: Command, result: Result) -> bytes:
    """The text reply to `command` given the same result fields a binary reply carries."""
    fmt = _FORMATS.get(type(command))
    return fmt(result) if fmt is not None else _line("+OK")


def encode_text_error(error: MQError) -> bytes:
    return _line(f"-ERR {error.code.value} {error.message}")
