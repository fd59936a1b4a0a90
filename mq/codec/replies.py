"""The text reply formats commands declare (`Spec.reply`): the result fields of a command, the
same a binary reply carries, as lines a person can read."""

from __future__ import annotations

from typing import Any

from mq.codec.escape import escape_body
from mq.codec.text_lines import (
    clock_text,
    field_text,
    format_message,
    group_table,
    line,
    lines,
    number_text,
    seconds,
    stats_table,
)

Result = dict[str, Any]


def pong(r: Result) -> bytes:
    return line("+PONG")


def bye(r: Result) -> bytes:
    return line("+BYE")


def published(r: Result) -> bytes:
    return line(f"+OK {r['msg_id']}" + (" duplicate" if r.get("duplicate") else ""))


def copies(r: Result) -> bytes:
    ids = r["msg_ids"]
    listed = " ".join(f"{q}={i}" for q, i in ids.items())
    return line(f"+OK {len(ids)} copies: {listed}" if ids else
                "+OK 0 copies: no queue is bound to this topic (BIND <topic> <queue>)")


def first_message(r: Result) -> bytes:
    return line(format_message(r["msgs"][0])) if r["msgs"] else line("+EMPTY")


def acked(r: Result) -> bytes:
    return lines([f"failed {f['receipt']} {f['code']} {f['message']}" for f in r["failed"]],
                 f"+OK {r['acked']} acked, {len(r['failed'])} failed")


def touched(r: Result) -> bytes:
    return line(f"+OK {seconds(r['lease_s'])}")


def _setting(value: object) -> str:
    return seconds(value) if isinstance(value, float) else number_text(value)


def declared(r: Result) -> bytes:
    settings = " ".join(f"{k}={_setting(r[k])}" for k in ("retention_s", "lease_s",
                        "max_deliveries", "dead_letter", "dedup_window_s") if k in r)
    return line(f"+OK {r['queue']} {settings}")


def queue_names(r: Result) -> bytes:
    return lines(r["queues"], f"+OK {len(r['queues'])} queues")


def statistics(r: Result) -> bytes:
    groups = group_table(r["queues"])
    return lines(stats_table(r["queues"]) + (["", *groups] if groups else []),
                 f"+OK {len(r['queues'])} queues")


def session(r: Result) -> bytes:
    return line(f"+OK session {r['session']} heartbeat_s={seconds(r['heartbeat_s'])}"
                f" dead_after_s={seconds(r['dead_after_s'])} grace_s={seconds(r['grace_s'])}"
                f" resumed={'yes' if r['resumed'] else 'no'}")


def joined(r: Result) -> bytes:
    return line(f"+OK joined {r['queue']}/{r['group']} as {r['consumer']}"
                f" prefetch={r['prefetch']} members={r['members']}")


def purged(r: Result) -> bytes:
    return line(f"+OK purged {r['purged']} messages")


def deleted(r: Result) -> bytes:
    return line(f"+OK deleted {r['queue']} and its {r['deleted']} messages")


def _peeked_line(m: dict[str, Any]) -> str:
    parts = [f"#{m['msg_id']}", f"deliveries={m['deliveries']}", f"priority={m['priority']}"]
    if m.get("key") is not None:
        parts.append(f"key={m['key']}")
    if m.get("dead_reason"):
        parts.append(f"dead_from={m['dead_from']} reason={m['dead_reason']!r}")
    if m.get("last_error"):
        parts.append(f"last_error={m['last_error']!r}")
    parts.append(f"body={escape_body(m['body'])}")
    return " ".join(parts)


def peeked(r: Result) -> bytes:
    return lines([_peeked_line(m) for m in r["msgs"]], f"+OK {len(r['msgs'])} messages")


def redriven(r: Result) -> bytes:
    return line(f"+OK redriven {r['redriven']} messages")


def rebound(r: Result) -> bytes:
    return line(f"+OK {'changed' if r['changed'] else 'unchanged'}: "
                + ", ".join(f"{t} -> {' '.join(qs) or '(none)'}"
                            for t, qs in r["bindings"].items()))


def bindings(r: Result) -> bytes:
    return lines([f"{t} -> {', '.join(qs)}" for t, qs in r["bindings"].items()],
                 f"+OK {len(r['bindings'])} topics")


def explained(r: Result) -> bytes:
    return lines([f"{k}: {number_text(v)}" for k, v in r.items() if k != "why"],
                 f"+OK {r['why']}")


def _event_line(e: dict[str, Any]) -> str:
    details = " ".join(f"{k}={field_text(v)}" for k, v in e.items() if k not in ("at", "event"))
    return f"{clock_text(e['at'])} {e['event']}" + (f" {details}" if details else "")


def history(r: Result) -> bytes:
    return lines([_event_line(e) for e in r["events"]],
                 f"+OK {len(r['events'])} events"
                 + ("" if r["events"] else " (compacted, or never existed)"))


def monitoring(r: Result) -> bytes:
    return line(f"+OK monitoring {r['queue'] or 'all queues'}; EVENT lines follow")


def subscribed(r: Result) -> bytes:
    return line(f"+OK subscribed to {r['queue']} prefetch={r['prefetch']}; MSG lines follow")
