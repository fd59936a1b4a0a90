"""One row of the log, and the three things done with rows: `encode` a change into the values of
its row, `Fold` rows back into the state they leave behind, `describe` a row as a HISTORY event.

The row's fields are the log table's columns, in order (sqlite.py builds its SQL from them). A
row's `kind` is an `Event` code; which other fields a kind fills is written once, in `encode`,
and read back in `Fold` and `describe`. No SQL here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from mq.core.events import (
    BY_CODE,
    FINAL,
    Acked,
    Appended,
    Change,
    Event,
    Expired,
    Leased,
    Left,
    Moved,
    Nacked,
    Released,
    Removed,
)
from mq.core.model import DeadLetter, Headers, Message, State


class LogRow(NamedTuple):
    msg_id: int
    kind: int  # an Event code
    at: float  # Unix s
    queue: str | None = None  # PUBLISHED: its queue; DEAD_LETTERED, REDRIVEN: where to
    body: bytes | None = None  # PUBLISHED, unless a fan-out copy (body_of)
    key: str | None = None
    delivery: int | None = None  # LEASED: the delivery; moves: the new delivery base
    holder: str | None = None  # LEASED, RELEASED, LEFT
    ready_at: float | None = None  # PUBLISHED with a delay, NACKED: when it is ready again;
    # LEASED by a clustered broker: when the lease ends
    detail: str | None = None  # NACKED: the error; REMOVED and moves: the reason
    priority: int | None = None
    expires_at: float | None = None
    dedup: str | None = None
    body_of: int | None = None  # fan-out copy: the message whose PUBLISHED row has the body
    headers: str | None = None  # PUBLISHED with headers: a JSON object of str to str (v3)


# Plain ints for the kinds on the hot paths (every change is encoded, every row folded): an
# IntEnum costs more to bind and to compare.
_PUBLISHED, _LEASED, _ACKED, _NACKED, _EXPIRED, _REMOVED, _RELEASED, _LEFT = (
    int(Event.PUBLISHED), int(Event.LEASED), int(Event.ACKED), int(Event.NACKED),
    int(Event.EXPIRED), int(Event.REMOVED), int(Event.RELEASED), int(Event.LEFT))
_DEAD_LETTERED, _REDRIVEN = int(Event.DEAD_LETTERED), int(Event.REDRIVEN)
_FINAL = frozenset(int(e) for e in FINAL)


# --- encode ---------------------------------------------------------------------------------

# What is bound for a field a row does not have. Binding None costs sqlite3 about a microsecond
# a value (it is not on the module's fast path: each None goes through the adapter lookup), and
# a LEASED or ACKED row has ten or more such fields, so every absent field is bound as a value
# of a fast type that SQLite itself turns into NULL: a NaN for a number (SQLite stores a NaN as
# NULL), the integer 0 for a text or blob (the INSERT wraps those columns in NULLIF(?, 0), and
# no text or blob equals an integer). The row stored is the same as with None; only the binding
# is cheaper (sqlite.py, "Cost").
NO_NUMBER = float("nan")
NO_TEXT = 0
TEXT_FIELDS = frozenset({"queue", "body", "key", "holder", "detail", "dedup", "headers"})
SMALL_BODY_BYTES = 4_096  # bound as a bytearray: bytes, like None, miss the fast path

_N, _T = NO_NUMBER, NO_TEXT
Values = tuple[Any, ...]  # one row's values in LogRow order, as bound to the INSERT


def _body(body: bytes | None) -> bytes | bytearray | int:
    if body is None:
        return _T
    return bytearray(body) if len(body) <= SMALL_BODY_BYTES else body


def encode_headers(headers: Headers) -> str:
    """A message's headers as the log keeps them: a compact JSON object, which any SQL store
    (and a person with the sqlite3 shell) can read."""
    return json.dumps(headers, ensure_ascii=False, separators=(",", ":"))


def decode_headers(text: str | None) -> Headers | None:
    return None if text is None else cast(Headers, json.loads(text))


def _appended(c: Appended) -> Values:
    m = c.message
    headers = m.headers
    return (m.id, _PUBLISHED, m.published_at, m.queue,
            _body(m.body) if c.body_of is None else _T, _T if m.key is None else m.key, _N, _T,
            m.ready_at if m.state is State.DELAYED else _N, _T, m.priority,
            _N if m.expires_at is None else m.expires_at, _T if m.dedup_id is None else m.dedup_id,
            _N if c.body_of is None else c.body_of,
            _T if headers is None else encode_headers(headers))


# One function per change type, looked up by type; every field given, in LogRow order.
ENCODERS: dict[type, Callable[[Any], Values]] = {  # change type -> its row's values
    Appended: _appended,
    Leased: lambda c: (c.msg_id, _LEASED, c.at, _T, _T, _T, c.delivery, c.holder,
                       c.until or _N, _T, _N, _N, _T, _N, _T),  # ready_at: a clustered lease's end
    Acked: lambda c: (c.msg_id, _ACKED, c.at, _T, _T, _T, _N, _T, _N, _T, _N, _N, _T, _N, _T),
    Nacked: lambda c: (c.msg_id, _NACKED, c.at, _T, _T, _T, _N, _T, c.ready_at,
                       _T if c.error is None else c.error, _N, _N, _T, _N, _T),
    Expired: lambda c: (c.msg_id, _EXPIRED, c.at, _T, _T, _T, _N, _T, _N, _T, _N, _N, _T, _N, _T),
    Released: lambda c: (c.msg_id, _RELEASED, c.at, _T, _T, _T, _N, c.holder, _N, _T, _N, _N,
                         _T, _N, _T),
    Left: lambda c: (c.msg_id, _LEFT, c.at, _T, _T, _T, _N, c.holder, _N, _T, _N, _N, _T, _N, _T),
    Removed: lambda c: (c.msg_id, _REMOVED, c.at, _T, _T, _T, _N, _T, _N, c.reason, _N, _N, _T,
                        _N, _T),
    Moved: lambda c: (c.msg_id, _REDRIVEN if c.redrive else _DEAD_LETTERED, c.at, c.queue, _T,
                      _T, c.delivery_base, _T, _N, c.reason, _N, _N, _T, _N, _T),
}


def encode(change: Change) -> Values | None:
    """The values bound to write `change` as a log row (absent fields as NO_NUMBER and
    NO_TEXT); None for a change that is not a row (settings and bindings live in tables of
    their own)."""
    make = ENCODERS.get(type(change))
    return None if make is None else make(change)


# --- fold -----------------------------------------------------------------------------------


class Fold:
    """The state that log rows leave behind: first every publish, in `seq` order (`published`,
    `published_plain`), then every later event, in `seq` order (`events`). That is the order
    that matters: a message's events come after its publish and touch only it.

    Rows come as plain tuples of the columns the store's recovery queries select (sqlite.py): a
    million of them are folded at a restart, so they are unpacked, never wrapped. Leases are
    void after a restart: a leased message comes back READY with its delivery count."""

    def __init__(self) -> None:
        self.messages: dict[int, Message] = {}  # every published message still in the log
        self.finished: dict[int, float] = {}  # id -> when it was acked or removed
        self.body_of: dict[int, int] = {}  # fan-out copy -> the message whose row has the body
        self._names: dict[str, str] = {}  # one str object per queue name, not one per row

    @property
    def max_id(self) -> int:
        return max(self.messages, default=0)

    def published_plain(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Publishes without options (priority 0, no key, delay, TTL, dedup id, shared body
        or headers): (msg_id, at, queue, body). Most of a backlog."""
        messages, names = self.messages, self._names
        for msg_id, at, queue, body in rows:
            messages[msg_id] = Message(msg_id, names.setdefault(queue, queue), body, None, at)

    def published(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Publishes with options or headers: (msg_id, at, queue, body, key, ready_at,
        priority, expires_at, dedup, body_of, headers)."""
        for (msg_id, at, queue, body, key, ready_at, priority, expires_at, dedup,
             body_of, headers) in rows:
            if body_of is not None:
                holder = self.messages.get(body_of)
                body = holder.body if holder is not None else b""
                self.body_of[msg_id] = body_of
            msg = Message(msg_id, self._names.setdefault(queue, queue), body, key, at,
                          priority=priority or 0, expires_at=expires_at, dedup_id=dedup,
                          headers=decode_headers(headers))
            if ready_at is not None and ready_at > at:
                msg.state, msg.ready_at = State.DELAYED, ready_at
            self.messages[msg_id] = msg

    def events(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Every other row: (msg_id, kind, at, queue, delivery, ready_at, detail)."""
        messages, finished = self.messages, self.finished
        for row in rows:
            msg_id, kind = row[0], row[1]
            if kind in _FINAL:
                finished[msg_id] = row[2]
            else:
                msg = messages.get(msg_id)
                if msg is not None:
                    _apply(msg, row)

    def live(self) -> list[Message]:
        """The messages that are not finished, in id order."""
        messages, finished = self.messages, self.finished
        return [messages[i] for i in sorted(messages) if i not in finished]

    def finished_dedup(self) -> list[Message]:
        """Finished messages with a dedup id: their ids are still remembered for a while."""
        finished = self.finished
        return [m for msg_id, m in self.messages.items()
                if msg_id in finished and m.dedup_id is not None]


def _apply(msg: Message, row: tuple[Any, ...]) -> None:
    """Fold one row that is neither a publish nor final into its message."""
    _, kind, at, queue, delivery, ready_at, detail = row
    if kind == _LEASED:
        msg.deliveries = delivery
        msg.state = State.READY  # leases are void after a restart
    elif kind == _NACKED:
        if detail is not None:
            msg.last_error = detail
        if ready_at > at:
            msg.state, msg.ready_at = State.DELAYED, ready_at
        else:
            msg.state = State.READY
    elif kind == _RELEASED:
        msg.deaths += 1
        msg.state = State.READY
    elif kind in (_EXPIRED, _LEFT):
        msg.state = State.READY
    elif kind in (_DEAD_LETTERED, _REDRIVEN):
        msg.dead = DeadLetter(msg.queue, detail, at) if kind == _DEAD_LETTERED else None
        msg.delivery_base = delivery
        msg.queue, msg.state = queue, State.READY  # (restore shares one name per queue)


# --- describe -------------------------------------------------------------------------------


def describe(row: LogRow) -> dict[str, Any]:
    """A row as a HISTORY event (protocol.md 2.3): `at`, `event` and the fields that apply."""
    event = BY_CODE[row.kind]
    out: dict[str, Any] = {"at": row.at, "event": event.wire}
    if event is Event.PUBLISHED:
        out.update(queue=row.queue, key=row.key, priority=row.priority or None,
                   dedup_id=row.dedup, size=len(row.body) if row.body is not None else None,
                   delay_until=row.ready_at, expires_at=row.expires_at,
                   headers=decode_headers(row.headers))
    elif event is Event.LEASED:
        out.update(delivery=row.delivery, holder=row.holder)
    elif event is Event.NACKED:
        out.update(error=row.detail, ready_at=row.ready_at)
    elif event in (Event.RELEASED, Event.LEFT):
        out.update(holder=row.holder)
    elif event in (Event.DEAD_LETTERED, Event.REDRIVEN, Event.REMOVED):
        out.update(queue=row.queue, reason=row.detail)
    return {k: v for k, v in out.items() if v is not None}
