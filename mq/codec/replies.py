"""Replies as typed values: one frozen class per reply shape, declared by its command's SPEC.

A handler returns one of these; the connection's mode encodes it. In binary mode `fields()` is
the reply map beside `rid` and `ok` (protocol.md 2.3): the dataclass fields in declaration
order, unless a class says otherwise (`Deduplicated` adds `duplicate: true`; EXPLAIN's facts
are the map itself). The replies sent once per message (publish, get, the empty ones) spell
their map out rather than walk their fields. In text mode `text()` gives the lines a person
reads (protocol.md 3.2). Maps that other layers shape (messages, statistics, log events) are
carried as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mq.codec.escape import escape_body, escape_text, one_line
from mq.codec.text_lines import (
    clock_text,
    field_text,
    format_message,
    group_table,
    header_fields,
    line,
    lines,
    name_values,
    seconds,
    stats_table,
    value_text,
)

Wire = Mapping[str, Any]


class Reply:
    """Base of every reply value."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]]  # the field names, set by @dataclass

    def fields(self) -> dict[str, Any]:
        """The fields of the binary reply, in order."""
        return {name: getattr(self, name) for name in self.__match_args__}

    def text(self) -> bytes:
        return line("+OK")


@dataclass(frozen=True, slots=True)
class Done(Reply):
    """Nothing to report but success: `+OK`."""

    def fields(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class Pong(Done):
    def text(self) -> bytes:
        return line("+PONG")


@dataclass(frozen=True, slots=True)
class Bye(Done):
    """The answer to QUIT; the connection closes after it."""

    def text(self) -> bytes:
        return line("+BYE")


DONE = Done()
PONG = Pong()
BYE = Bye()


@dataclass(frozen=True, slots=True)
class Usage(Reply):
    """HELP: the usage of every command (text mode only)."""

    help_lines: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        return {}  # HELP has no binary op: the lines are for people

    def text(self) -> bytes:
        return lines(list(self.help_lines), "+OK")


@dataclass(frozen=True, slots=True)
class Published(Reply):
    msg_id: int

    def fields(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id}

    def text(self) -> bytes:
        return line(f"+OK {self.msg_id}")


@dataclass(frozen=True, slots=True)
class Deduplicated(Published):
    """A publish whose dedup_id the queue had seen: nothing stored, msg_id is the first's."""

    def fields(self) -> dict[str, Any]:
        return {"msg_id": self.msg_id, "duplicate": True}

    def text(self) -> bytes:
        return line(f"+OK {self.msg_id} duplicate")


@dataclass(frozen=True, slots=True)
class PublishedMany(Reply):
    msg_ids: list[int]


@dataclass(frozen=True, slots=True)
class Copies(Reply):
    """FANOUT: the id of the copy each bound queue got."""

    msg_ids: dict[str, int]

    def text(self) -> bytes:
        ids = self.msg_ids
        listed = " ".join(f"{q}={i}" for q, i in ids.items())
        return line(f"+OK {len(ids)} copies: {listed}".rstrip())


@dataclass(frozen=True, slots=True)
class Messages(Reply):
    """GET: the messages leased (protocol.md 2.3 message maps); none when nothing was ready."""

    msgs: Sequence[Wire]

    def fields(self) -> dict[str, Any]:
        return {"msgs": self.msgs}

    def text(self) -> bytes:
        return line(format_message(self.msgs[0])) if self.msgs else line("+EMPTY")


@dataclass(frozen=True, slots=True)
class AckedMany(Reply):
    acked: int
    failed: list[dict[str, str]]  # receipt, code, message of each receipt that failed

    def text(self) -> bytes:
        return lines([f"failed {f['receipt']} {f['code']} {one_line(f['message'])}"
                      for f in self.failed],
                     f"+OK {self.acked} acked, {len(self.failed)} failed")


@dataclass(frozen=True, slots=True)
class Touched(Reply):
    lease_s: float  # the new lease, from now

    def text(self) -> bytes:
        return line(f"+OK {seconds(self.lease_s)}")


@dataclass(frozen=True, slots=True)
class Declared(Reply):
    """DECLARE: every setting of the queue, as it now stands."""

    queue: str
    retention_s: float
    lease_s: float
    max_deliveries: int
    dead_letter: str | None
    dedup_window_s: float

    def text(self) -> bytes:
        settings = " ".join(f"{k}={value_text(k, v)}" for k, v in self.fields().items()
                            if k != "queue")
        return line(f"+OK {self.queue} {settings}")


@dataclass(frozen=True, slots=True)
class QueueNames(Reply):
    queues: list[str]

    def text(self) -> bytes:
        return lines(self.queues, f"+OK {len(self.queues)} queues")


@dataclass(frozen=True, slots=True)
class Statistics(Reply):
    """STATS (protocol.md 6): the server's figures and each queue's."""

    server: dict[str, Any]
    queues: dict[str, dict[str, Any]]

    def text(self) -> bytes:
        groups = group_table(self.queues)
        return lines(stats_table(self.queues) + (["", *groups] if groups else []),
                     f"+OK {len(self.queues)} queues")


@dataclass(frozen=True, slots=True)
class ClusterMap(Reply):
    """CLUSTER (protocol.md 11): which broker serves which slots. `slots` are
    [first, last, node, addr] ranges; `brokers` maps a node to its addr, leaving flag and
    slot count. A broker that is not in a cluster answers `cluster` None and no slots."""

    cluster: str | None
    node: str | None
    map_epoch: int
    slots: list[list[Any]]
    brokers: dict[str, dict[str, Any]]

    def text(self) -> bytes:
        body = [f"slots {a}-{b} {node} {addr}" for a, b, node, addr in self.slots]
        body += [f"broker {n} {b['addr']} slots={b['slots']}{' leaving' if b['leaving'] else ''}"
                 for n, b in self.brokers.items()]
        return lines(body, f"+OK cluster {self.cluster or '-'} node {self.node or '-'} "
                           f"map_epoch {self.map_epoch}")


@dataclass(frozen=True, slots=True)
class SessionStarted(Reply):
    """HELLO: the session's token and timing, in seconds."""

    session: str
    heartbeat_s: float
    dead_after_s: float
    grace_s: float
    resumed: bool

    def text(self) -> bytes:
        return line(f"+OK session {self.session} heartbeat_s={seconds(self.heartbeat_s)}"
                    f" dead_after_s={seconds(self.dead_after_s)} grace_s={seconds(self.grace_s)}"
                    f" resumed={'yes' if self.resumed else 'no'}")


@dataclass(frozen=True, slots=True)
class Joined(Reply):
    queue: str
    group: str
    consumer: str
    prefetch: int
    members: int

    def text(self) -> bytes:
        return line(f"+OK joined {self.queue}/{self.group} as {self.consumer}"
                    f" prefetch={self.prefetch} members={self.members}")


@dataclass(frozen=True, slots=True)
class Purged(Reply):
    purged: int

    def text(self) -> bytes:
        return line(f"+OK purged {self.purged} messages")


@dataclass(frozen=True, slots=True)
class Deleted(Reply):
    queue: str
    deleted: int

    def text(self) -> bytes:
        return line(f"+OK deleted {self.queue} and its {self.deleted} messages")


@dataclass(frozen=True, slots=True)
class Peeked(Reply):
    """PEEK: the next ready messages, not leased (protocol.md 2.3 peeked message maps)."""

    msgs: list[dict[str, Any]]

    def text(self) -> bytes:
        return lines([_peeked_line(m) for m in self.msgs], f"+OK {len(self.msgs)} messages")


def _peeked_line(m: Wire) -> str:
    parts = [f"#{m['msg_id']}", f"deliveries={m['deliveries']}", f"priority={m['priority']}"]
    if m.get("key") is not None:
        parts.append(f"key={field_text('key', m['key'])}")
    if m.get("headers"):
        parts.append(header_fields(m["headers"]))
    if m.get("dead_reason"):
        parts.append(f"dead_from={m['dead_from']} reason={field_text('reason', m['dead_reason'])}")
    if m.get("last_error"):
        parts.append(f"last_error={field_text('last_error', m['last_error'])}")
    parts.append(f"body={escape_body(m['body'])}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Redriven(Reply):
    redriven: int

    def text(self) -> bytes:
        return line(f"+OK redriven {self.redriven} messages")


@dataclass(frozen=True, slots=True)
class Rebound(Reply):
    """BIND and UNBIND: whether anything changed, and the topic's queues now."""

    changed: bool
    bindings: dict[str, list[str]]

    def text(self) -> bytes:
        return line(f"+OK {'changed' if self.changed else 'unchanged'}: "
                    + ", ".join(f"{t} -> {' '.join(qs) or '(none)'}"
                                for t, qs in self.bindings.items()))


@dataclass(frozen=True, slots=True)
class TopicBindings(Reply):
    bindings: dict[str, list[str]]

    def text(self) -> bytes:
        return lines([f"{t} -> {', '.join(qs)}" for t, qs in self.bindings.items()],
                     f"+OK {len(self.bindings)} topics")


@dataclass(frozen=True, slots=True)
class Explanation(Reply):
    """EXPLAIN: what applies to the message, `why` among it; the facts are the reply map."""

    facts: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        return self.facts

    def text(self) -> bytes:
        return lines([f"{k}: {value_text(k, v)}" for k, v in self.facts.items() if k != "why"],
                     f"+OK {escape_text(self.facts['why'])}")


@dataclass(frozen=True, slots=True)
class LogEvents(Reply):
    """HISTORY: the message's events from the log, oldest first."""

    msg_id: int
    events: list[dict[str, Any]]

    def text(self) -> bytes:
        return lines([_event_line(e) for e in self.events],
                     f"+OK {len(self.events)} events"
                     + ("" if self.events else " (compacted, or never existed)"))


def _event_line(e: Wire) -> str:
    details = name_values((k, v) for k, v in e.items() if k not in ("at", "event"))
    return f"{clock_text(e['at'])} {e['event']}" + (f" {details}" if details else "")


@dataclass(frozen=True, slots=True)
class Authenticated(Reply):
    """AUTH: the user this connection now acts as."""

    user: str

    def text(self) -> bytes:
        return line(f"+OK authenticated as {self.user}")


@dataclass(frozen=True, slots=True)
class Monitoring(Reply):
    queue: str | None  # None: every queue

    def text(self) -> bytes:
        return line(f"+OK monitoring {self.queue or 'all queues'}; EVENT lines follow")


@dataclass(frozen=True, slots=True)
class Subscribed(Reply):
    queue: str
    prefetch: int

    def text(self) -> bytes:
        return line(f"+OK subscribed to {self.queue} prefetch={self.prefetch}; MSG lines follow")
