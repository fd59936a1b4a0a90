"""One row of the log, and the three things done with rows: `encode` a change into the values of
its row, `Fold` rows back into the state they leave behind, `describe` a row as a HISTORY event.

The row's fields are the log table's columns, in order (sqlite.py builds its SQL from them). A
row's `kind` is an `Event` code; which other fields a kind fills is written once, in `encode`,
and read back in `Fold` and `describe`. No SQL here.

Batch rows (SQLite log format 4). Producers publish, and consumers lease and ack, in batches,
and one row per message of a batch was most of what the log cost: building, binding and storing
a 15-column row for each, and reading a million of them back at a restart (the sqlite3 module
spends about a microsecond a row, whatever it holds). So `runs_of` writes consecutive plain
publishes to one queue (no options: what RECOVER_PLAIN reads), consecutive LEASED changes that
share their time, holder and delivery, and consecutive ACKED changes that share their time as
ONE row of kind BATCHED + the event's code: `msg_id` is the smallest id of the run, `body`
holds the run packed (packed.py: the ids; for publishes their times and bodies too), the other
fields are the event's as in its single row (a publish row: `at` of its first, `queue`). Its
ids lie within MAX_SPAN of `msg_id`, so the rows that may hold a given id are found through the
msg_id index (sqlite.py: HISTORY, read_bodies, compaction). Only changes next to each other in
a batch share a row, so the log keeps every message's events in their order. A run of one
change is written as the plain row. `Fold` reads both kinds of rows, so a store that writes
only plain rows (Postgres) recovers with the same code.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, groupby, repeat
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, cast

from mq.core.backlog import Backlog
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
from mq.storage.packed import ids_of, pack_ids, pack_publishes, unpack_publishes


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
_DELAYED = State.DELAYED
FEW_QUEUES = 8  # up to this many queues, plain publishes are sorted by queue in C (`plain`)
BATCHED = 100  # a batch row's kind: BATCHED + the code of the event of all its messages
PUBLISHES = BATCHED + _PUBLISHED  # plain publishes of one queue
MAX_RUN_BODY_BYTES = 1 << 20  # bodies in one publish batch row at most (a longer run is cut;
# a body this big or bigger is a row of its own): far below SQLite's limit on a value (1e9 B),
# and what a compaction that rewrites the row copies at most
MAX_SPAN = 4_096  # a batch row's ids are all in [msg_id, msg_id + MAX_SPAN)


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
    # A body is left in the log only once its publish is written, never before.
    assert not isinstance(m.body, int), "a publish carries its body"
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


# What a change is keyed by: consecutive changes with the same key may share a batch row. Read
# by field position in C (itemgetter: a change is a tuple) and compared as tuples by groupby:
# this runs for every change.
_LEASE_KEY = itemgetter(*map(Leased._fields.index, ("at", "holder", "delivery", "until")))
_ACK_AT = itemgetter(Acked._fields.index("at"))
_ID = itemgetter(0)  # msg_id, of a Leased and an Acked
assert Leased._fields[0] == Acked._fields[0] == "msg_id"
_MESSAGE_ID = attrgetter("message.id")


def _plain_queue(c: Appended) -> str | None:
    """The queue of a publish whose row would be plain (no options and a body of its own:
    what RECOVER_PLAIN reads, sqlite.py), the key its runs share; None for any other."""
    m = c.message
    if (m.key is None and c.body_of is None and m.priority == 0 and m.state is not _DELAYED
            and (m.extra is None  # most often: then it has no TTL, dedup id or headers
                 or (m.expires_at is None and m.dedup_id is None and m.headers is None))):
        return m.queue
    return None


def runs_of(kind: type, changes: list[Any]) -> list[Values]:
    """The rows of `changes`, consecutive changes of type `kind` (one that is a row): runs of
    plain publishes to one queue, of leases that share their time, holder and delivery, and of
    acks that share their time become batch rows (see the header); the others, and runs of
    one, are rows of their own."""
    if len(changes) == 1:  # most batches of a one-at-a-time client
        return [ENCODERS[kind](changes[0])]
    rows: list[Values] = []
    if kind is Leased:
        for (at, holder, delivery, until), run in groupby(changes, _LEASE_KEY):
            for part, ids in _within_span(list(run), _ID):
                rows.append(_row_of_one(part) if len(part) == 1 else (
                    min(ids), BATCHED + _LEASED, at, _T, pack_ids(ids), _T, delivery, holder,
                    until or _N, _T, _N, _N, _T, _N, _T))
    elif kind is Acked:
        for at, run in groupby(changes, _ACK_AT):
            for part, ids in _within_span(list(run), _ID):
                rows.append(_row_of_one(part) if len(part) == 1 else (
                    min(ids), BATCHED + _ACKED, at, _T, pack_ids(ids), _T, _N, _T, _N, _T, _N,
                    _N, _T, _N, _T))
    elif kind is Appended:
        for queue, run in groupby(changes, _plain_queue):
            if queue is None:
                rows.extend(map(_appended, run))
                continue
            for part, _ in _within_span(list(run), _MESSAGE_ID):
                for few in _within_bytes(part):
                    rows.append(_row_of_one(few) if len(few) == 1 else _publishes(few))
    else:
        rows.extend(map(ENCODERS[kind], changes))
    return rows


def _row_of_one(run: list[Any]) -> Values:
    """The row of a run of one change: the change's own."""
    return ENCODERS[type(run[0])](run[0])


def _publishes(run: list[Appended]) -> Values:
    """One batch row for the plain publishes `run`, all to one queue."""
    messages = [c.message for c in run]
    first = messages[0]
    body = pack_publishes([m.id for m in messages], [m.published_at for m in messages],
                          [cast(bytes, m.body) for m in messages])
    return (min(m.id for m in messages), PUBLISHES, first.published_at, first.queue, body, _T,
            _N, _T, _N, _T, _N, _N, _T, _N, _T)


def _within_span(run: list[Any], id_of: Callable[[Any], int]
                 ) -> list[tuple[list[Any], list[int]]]:
    """`run` cut, in order, into parts whose ids span less than MAX_SPAN (most often one
    part: `run` itself), each with its ids."""
    ids = list(map(id_of, run))
    if max(ids) - min(ids) < MAX_SPAN:
        return [(run, ids)]
    parts: list[tuple[list[Any], list[int]]] = []
    low = high = 0
    for c, msg_id in zip(run, ids, strict=True):
        if parts and max(high, msg_id) - min(low, msg_id) < MAX_SPAN:
            parts[-1][0].append(c)
            parts[-1][1].append(msg_id)
            low, high = min(low, msg_id), max(high, msg_id)
        else:
            parts.append(([c], [msg_id]))
            low = high = msg_id
    return parts


def _within_bytes(run: list[Appended]) -> list[list[Appended]]:
    """`run` cut, in order, into parts of at most MAX_RUN_BODY_BYTES of bodies (a bigger body
    is a part of its own)."""
    sizes = [len(cast(bytes, c.message.body)) for c in run]
    if sum(sizes) <= MAX_RUN_BODY_BYTES:
        return [run]
    parts: list[list[Appended]] = []
    total = 0
    for c, size in zip(run, sizes, strict=True):
        if parts and total + size <= MAX_RUN_BODY_BYTES:
            parts[-1].append(c)
            total += size
        else:
            parts.append([c])
            total = size
    return parts


# --- fold -----------------------------------------------------------------------------------


class Fold:
    """The state that log rows leave behind: first every publish, in `seq` order (`published`,
    `published_plain`), then every later event, in `seq` order (`events`). That is the order
    that matters: a message's events come after its publish and touch only it.

    Rows come as plain tuples of the columns the store's recovery queries select (sqlite.py): a
    million of them are folded at a restart, so they are unpacked, never wrapped. Leases are
    void after a restart: a leased message comes back READY with its delivery count.

    Plain publishes, most of a backlog, are kept as columns (id, time, body, queue number) in
    id order, not as messages: those that no later row touches become the queues' compact
    backlogs (`plain`, core/backlog.py); a later row makes its message a full one first."""

    def __init__(self, max_body_bytes: int | None = None) -> None:
        """`max_body_bytes`: bytes of plain bodies kept at most, in log order; the others are
        kept as their sizes (the body stays in the log: Message.body). None: all are kept."""
        self._room = max_body_bytes
        self.messages: dict[int, Message] = {}  # full messages (all but untouched plain ones)
        self.finished: dict[int, float] = {}  # id -> when it was acked or removed
        self.body_of: dict[int, int] = {}  # fan-out copy -> the message whose row has the body
        self._names: dict[str, str] = {}  # one str object per queue name, not one per row
        self._ids = array("q")  # plain publishes, ascending ids ...
        self._at = array("d")  # ... their publish times,
        self._bodies: list[bytes | int] = []  # their bodies (or sizes, beyond the budget),
        self._queue = array("l")  # ... and their queue's number in _queues; -1: taken
        self._queues: list[str] = []
        self._number: dict[str, int] = {}  # queue name -> its number

    @property
    def max_id(self) -> int:
        return max(max(self.messages, default=0), self._ids[-1] if self._ids else 0)

    def published_plain(self, rows: list[tuple[Any, ...]]) -> None:
        """Publishes without options (priority 0, no key, delay, TTL, dedup id, shared body
        or headers): (msg_id, at, queue, body, kind), each a row of its own (kind PUBLISHED)
        or a batch row of many (PUBLISHES, `body` packed). Most of a backlog: a chunk of one
        queue's rows in id order (the usual case) is added column by column."""
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        if PUBLISHES not in columns[4]:
            self._add_plain(*columns[:4])
            return
        start = 0
        for i, (_, _, queue, body, kind) in enumerate(rows):
            if kind == PUBLISHES:
                if start < i:
                    self._add_plain(*list(zip(*rows[start:i], strict=True))[:4])
                ids, ats, bodies = unpack_publishes(body)
                self._add_plain(ids, ats, (queue,) * len(ids), bodies)
                start = i + 1
        if start < len(rows):
            self._add_plain(*list(zip(*rows[start:], strict=True))[:4])

    def _add_plain(self, ids: Sequence[int], ats: Sequence[float], queues: Sequence[str],
                   given: Sequence[bytes]) -> None:
        bodies = given if self._room is None else self._within_budget(given)
        first = queues[0]
        if (ids[0] > (self._ids[-1] if self._ids else 0) and list(ids) == sorted(ids)
                and queues.count(first) == len(queues)):
            self._ids.extend(ids)
            self._at.extend(ats)
            self._bodies.extend(bodies)
            self._queue.extend(repeat(self._number_of(first), len(ids)))
            return
        for msg_id, at, queue, body in zip(ids, ats, queues, bodies, strict=True):
            if self._ids and msg_id <= self._ids[-1]:  # out of id order: kept whole
                self.messages[msg_id] = Message(msg_id, self._names.setdefault(queue, queue),
                                                body, None, at)
                continue
            self._ids.append(msg_id)
            self._at.append(at)
            self._bodies.append(body)
            self._queue.append(self._number_of(queue))

    def _within_budget(self, bodies: Sequence[bytes]) -> Sequence[bytes | int]:
        """`bodies` as kept: each while the budget has room, else its size."""
        room = self._room
        assert room is not None
        if room == 0:  # the budget is spent: most of a big backlog, in C
            return tuple(map(len, bodies))
        kept: list[bytes | int] = []
        for body in bodies:
            if len(body) <= room:
                room -= len(body)
                kept.append(body)
            else:
                room = 0  # in log order: once one is left out, all later ones are
                kept.append(len(body))
        self._room = room
        return tuple(kept)

    def _number_of(self, queue: str) -> int:
        number = self._number.get(queue)
        if number is None:
            number = self._number[queue] = len(self._queues)
            self._queues.append(queue)
            self._names[queue] = queue
        return number

    def _plain_index(self, msg_id: int) -> int | None:
        """Where plain publish `msg_id` is in the columns, unless absent or taken."""
        i = bisect_left(self._ids, msg_id)
        if i < len(self._ids) and self._ids[i] == msg_id and self._queue[i] >= 0:
            return i
        return None

    def _take_plain(self, msg_id: int) -> Message | None:
        """Plain publish `msg_id` as a full message, off the columns; None if not there."""
        i = self._plain_index(msg_id)
        if i is None:
            return None
        msg = self.messages[msg_id] = Message(msg_id, self._queues[self._queue[i]],
                                              self._bodies[i], None, self._at[i])
        self._queue[i] = -1
        self._bodies[i] = b""
        return msg

    def _body(self, msg_id: int) -> bytes | int | None:
        msg = self.messages.get(msg_id)
        if msg is not None:
            return msg.body
        i = self._plain_index(msg_id)
        return None if i is None else self._bodies[i]

    def plain(self) -> dict[str, Backlog]:
        """Queue -> its plain messages that no later row touched, compactly, in id order."""
        numbers, names = self._queue, self._queues
        if len(names) == 1 and numbers.count(0) == len(numbers):
            return {names[0]: Backlog(self._ids, self._at, self._bodies)}
        if len(names) <= FEW_QUEUES:  # one selection per queue, each made in C
            out = {}
            for number, name in enumerate(names):
                mine = list(map(number.__eq__, numbers))
                if any(mine):
                    out[name] = Backlog(compress(self._ids, mine), compress(self._at, mine),
                                        compress(self._bodies, mine))
            return out
        columns: dict[int, tuple[list[int], list[float], list[bytes | int]]] = {}
        for msg_id, at, body, number in zip(self._ids, self._at, self._bodies, numbers,
                                            strict=True):
            if number >= 0:
                mine_ = columns.get(number)
                if mine_ is None:
                    mine_ = columns[number] = ([], [], [])
                mine_[0].append(msg_id)
                mine_[1].append(at)
                mine_[2].append(body)
        return {names[number]: Backlog(*cols) for number, cols in columns.items()}

    def published(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Publishes with options or headers: (msg_id, at, queue, body, key, ready_at,
        priority, expires_at, dedup, body_of, headers)."""
        for (msg_id, at, queue, body, key, ready_at, priority, expires_at, dedup,
             body_of, headers) in rows:
            if body_of is not None:
                holder_body = self._body(body_of)
                body = b"" if holder_body is None else holder_body
                self.body_of[msg_id] = body_of
            msg = Message(msg_id, self._names.setdefault(queue, queue), body, key, at,
                          priority=priority or 0, expires_at=expires_at, dedup_id=dedup,
                          headers=decode_headers(headers))
            if ready_at is not None and ready_at > at:
                msg.state, msg.ready_at = State.DELAYED, ready_at
            self.messages[msg_id] = msg

    def events(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Every other row: (msg_id, kind, at, queue, delivery, ready_at, detail, body); `body`
        is None but in a batch row, where it holds the ids the row is about."""
        for row in rows:
            if row[1] >= BATCHED:
                _, kind, at, queue, delivery, ready_at, detail, body = row
                for msg_id in ids_of(False, body):
                    self._event((msg_id, kind - BATCHED, at, queue, delivery, ready_at, detail))
            else:
                self._event(row)

    def _event(self, row: tuple[Any, ...]) -> None:
        """One message's event: (msg_id, kind, at, queue, delivery, ready_at, detail, ...)."""
        msg_id, kind = row[0], row[1]
        messages = self.messages
        if kind in _FINAL:
            self.finished[msg_id] = row[2]
            if msg_id not in messages:
                self._take_plain(msg_id)  # gone: its columns are left out of `plain`
        else:
            msg = messages.get(msg_id) or self._take_plain(msg_id)
            if msg is not None:
                _apply(msg, row)

    def live(self) -> list[Message]:
        """The full messages that are not finished, in id order (the rest: `plain`)."""
        messages, finished = self.messages, self.finished
        return [messages[i] for i in sorted(messages) if i not in finished]

    def finished_dedup(self) -> list[Message]:
        """Finished messages with a dedup id: their ids are still remembered for a while."""
        finished = self.finished
        return [m for msg_id, m in self.messages.items()
                if msg_id in finished and m.dedup_id is not None]


def _apply(msg: Message, row: tuple[Any, ...]) -> None:
    """Fold one row that is neither a publish nor final into its message."""
    kind, at, queue, delivery, ready_at, detail = row[1:7]
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


def history(rows: Iterable[Any], msg_id: int) -> list[dict[str, Any]]:
    """HISTORY of `msg_id` (describe) from rows of every LogRow column in `seq` order: its own
    rows, and batch rows, of which those that hold it count as its rows."""
    out = []
    for row in map(LogRow._make, rows):
        if row.kind >= BATCHED:
            mine = _own_row(row, msg_id)
            if mine is None:
                continue
            row = mine
        out.append(describe(row))
    return out


def _own_row(row: LogRow, msg_id: int) -> LogRow | None:
    """The row batch row `row` stands for of message `msg_id`; None if it does not hold it."""
    assert row.body is not None
    if row.kind == PUBLISHES:
        ids, ats, bodies = unpack_publishes(row.body)
        if msg_id not in ids:
            return None
        k = ids.index(msg_id)
        return row._replace(msg_id=msg_id, kind=_PUBLISHED, at=ats[k], body=bodies[k])
    if msg_id not in ids_of(False, row.body):
        return None
    return row._replace(msg_id=msg_id, kind=row.kind - BATCHED, body=None)


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
