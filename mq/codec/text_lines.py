"""Reply lines for people at a telnet prompt: line endings, numbers, clocks, tables, and the
pushed `MSG` and `EVENT` lines. The last line of a reply starts with `+`, `-ERR ` or `MSG `;
lines before it never do (protocol.md 3)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from mq.codec.escape import escape_body, escape_text, one_line, quote_field
from mq.errors import MQError

EOL = b"\r\n"


def line(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape") + EOL


def lines(body: list[str], last: str) -> bytes:
    return b"".join(line(text) for text in body) + line(last)


def error_line(error: MQError) -> bytes:
    """`-ERR <CODE> <human text>` (protocol.md 3.3)."""
    return line(f"-ERR {error.code.value} {one_line(error.message)}")


# Fields that hold a point in time (Unix s): printed as a UTC clock, like HISTORY's own times.
POINTS_IN_TIME = frozenset({"at", "published_at", "ready_at", "delay_until", "expires_at",
                            "lease_deadline", "dead_at"})


def seconds(value: float) -> str:
    """The shortest decimal that reads back as `value`, never with an exponent: `0.5`, `30`,
    `31536000` for a year. Text mode reads numbers back in the same form (protocol.md 3.2)."""
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")


def value_text(name: str, value: object) -> str:
    """The value of field `name` as a reply line prints it (protocol.md 3.1, 3.2): text escaped,
    a point in time as a UTC clock, other numbers in decimal, nothing as `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and name in POINTS_IN_TIME:
        return clock_text(value)
    if isinstance(value, float):
        return seconds(value)
    if isinstance(value, bytes):
        return escape_body(value)
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, Mapping):  # a message's headers (EXPLAIN)
        return header_fields(value)
    return str(value)


def header_fields(headers: Mapping[str, str]) -> str:
    """A message's headers as reply lines print them: `h.<name>=<value>` fields, each value
    escaped and quoted like any field (protocol.md 3.1), so PUB reads them back as typed."""
    return " ".join(f"h.{name}={quote_field(value)}" for name, value in headers.items())


def name_values(fields: Iterable[tuple[str, object]]) -> str:
    """The `name=value` fields of a HISTORY or MONITOR line; `headers` as its h. fields."""
    return " ".join(header_fields(v) if k == "headers" and isinstance(v, Mapping)
                    else f"{k}={field_text(k, v)}" for k, v in fields)


def field_text(name: str, value: object) -> str:
    """The value of a `name=value` field: like `value_text`, text also quoted where it has to
    be (quote_field)."""
    if isinstance(value, bytes):
        return quote_field(value.decode("utf-8", errors="surrogateescape"))
    if isinstance(value, str):
        return quote_field(value)
    return value_text(name, value)


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
    rows = [[name, *(value_text(c, q[c]) for c in STATS_COLUMNS)]
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
                         *(value_text(c, m[c]) for c in GROUP_COLUMNS)])
    return table(["queue/group", "consumer", *GROUP_COLUMNS], rows) if rows else []


def format_message(m: Mapping[str, Any]) -> str:
    """`MSG <receipt> <queue> <deliveries> [h.<name>=<value> ...] [--] <body>`: the rest reads
    as PUB's would. `--` follows the headers, and comes before a body that starts like a header
    or with `--` itself (protocol.md 3.2)."""
    head = f"MSG {m['receipt']} {m['queue']} {m['deliveries']}"
    body: bytes = m["body"]
    headers = m.get("headers")
    if headers:
        return f"{head} {header_fields(headers)} -- {escape_body(body)}"
    if _reads_as_option(body):
        return f"{head} -- {escape_body(body)}"
    return f"{head} {escape_body(body)}"


def _reads_as_option(body: bytes) -> bool:
    first = body.partition(b" ")[0]
    return first == b"--" or (first.startswith(b"h.") and b"=" in first)


def format_event(e: Mapping[str, Any]) -> str:
    """A MONITOR line: EVENT <time> <queue> <msg_id> <event> [name=value ...]."""
    extra = name_values((k, v) for k, v in e.items()
                        if k not in ("at", "queue", "msg_id", "event") and v is not None)
    return (f"EVENT {clock_text(e['at'])} {e.get('queue') or '-'} {e['msg_id']} {e['event']}"
            + (f" {extra}" if extra else ""))
