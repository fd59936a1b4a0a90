"""Log rows without a file: every change becomes a row of its own event, rows fold back into
state, and a row reads as the HISTORY event of the same name (rows.py). Rows are stored by the
real INSERT into an in-memory database, as the store does, so absent fields read back NULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from typing import get_args

from mq.core.events import (
    FINAL,
    Acked,
    Appended,
    Bound,
    Declared,
    Event,
    Expired,
    Leased,
    Left,
    MessageChange,
    Moved,
    Nacked,
    Purged,
    Released,
    Removed,
)
from mq.core.model import Message, QueueSettings, State
from mq.storage.rows import Fold, LogRow, describe, encode
from mq.storage.sqlite import (
    COLUMNS,
    INSERT_ONE,
    RECOVER_EVENTS,
    RECOVER_PLAIN,
    RECOVER_PUBLISHED,
    SCHEMA,
)

T0 = 1_800_000_000.0

SAMPLES: list[MessageChange] = [
    Appended(Message(1, "q", b"body", "k", T0, priority=3)),
    Leased(1, 1, "c1", T0 + 1, "q"),
    Nacked(1, T0 + 2, T0 + 12, "boom", "q"),
    Expired(1, T0 + 3, "q"),
    Released(1, T0 + 4, "c1", "q"),
    Left(1, T0 + 5, "c2", "q"),
    Moved(1, T0 + 6, "q.dlq", "delivered 3 times", 0, False, "q"),
    Moved(1, T0 + 7, "q", "redriven from q.dlq", 3, True, "q.dlq"),
    Removed(1, T0 + 8, "ttl", "q"),
    Acked(1, T0 + 9, "q"),
]


def in_memory(changes: Iterable[MessageChange]) -> sqlite3.Connection:
    """A log in memory holding the rows the store writes for `changes`."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.executemany(INSERT_ONE, [v for v in map(encode, changes) if v is not None])
    return conn


def stored(changes: Iterable[MessageChange]) -> list[LogRow]:
    """The rows the store writes for `changes`, read back as a SELECT returns them."""
    with closing(in_memory(changes)) as conn:
        return [LogRow._make(r) for r in conn.execute(f"SELECT {COLUMNS} FROM log ORDER BY seq")]


def folded(changes: Iterable[MessageChange], fold: Fold | None = None) -> Fold:
    """`changes` written, then folded as the store's recovery reads them."""
    fold = fold or Fold()
    with closing(in_memory(changes)) as conn:
        fold.published_plain(conn.execute(RECOVER_PLAIN).fetchall())
        fold.published(conn.execute(RECOVER_PUBLISHED).fetchall())
        fold.events(conn.execute(RECOVER_EVENTS).fetchall())
    return fold


def test_log_codes_and_wire_names_are_fixed() -> None:
    """Codes are what old files hold: they never change. One wire name per event."""
    assert {int(e): e.wire for e in Event} == {
        0: "published", 1: "leased", 2: "acked", 3: "nacked", 4: "lease expired",
        5: "removed", 6: "released (holder died)", 7: "dead-lettered", 8: "redriven",
        9: "released (holder left)",
    }


def test_every_message_change_is_a_row_of_its_own_event_and_reads_back_by_its_name() -> None:
    assert {type(c) for c in SAMPLES} == set(get_args(MessageChange))
    for change, row in zip(SAMPLES, stored(SAMPLES), strict=True):
        assert row.kind == change.kind
        assert describe(row)["event"] == change.kind.wire
        assert (row.kind in FINAL) == isinstance(change, (Acked, Removed))
    assert {c.kind for c in SAMPLES} == set(Event)


def test_queue_changes_are_not_log_rows() -> None:
    for change in (Declared("q", QueueSettings(1.0, 1.0)), Purged("q"), Bound("t", "q", True)):
        assert encode(change) is None


def test_history_events_carry_the_fields_of_their_event() -> None:
    described = [describe(row) for row in stored(SAMPLES)]
    assert described == [
        {"at": T0, "event": "published", "queue": "q", "key": "k", "priority": 3, "size": 4},
        {"at": T0 + 1, "event": "leased", "delivery": 1, "holder": "c1"},
        {"at": T0 + 2, "event": "nacked", "error": "boom", "ready_at": T0 + 12},
        {"at": T0 + 3, "event": "lease expired"},
        {"at": T0 + 4, "event": "released (holder died)", "holder": "c1"},
        {"at": T0 + 5, "event": "released (holder left)", "holder": "c2"},
        {"at": T0 + 6, "event": "dead-lettered", "queue": "q.dlq", "reason": "delivered 3 times"},
        {"at": T0 + 7, "event": "redriven", "queue": "q", "reason": "redriven from q.dlq"},
        {"at": T0 + 8, "event": "removed", "reason": "ttl"},
        {"at": T0 + 9, "event": "acked"},
    ]


def test_fold_counts_a_death_only_for_a_holder_that_died() -> None:
    [msg] = folded(SAMPLES[:6]).live()  # published .. left: not yet moved or finished
    assert (msg.state, msg.deliveries, msg.deaths, msg.last_error) == (
        State.READY, 1, 1, "boom")


def test_fold_follows_moves_and_drops_finished_messages() -> None:
    fold = folded(SAMPLES[:7])
    [msg] = fold.live()
    assert msg.queue == "q.dlq" and msg.dead is not None and msg.dead.origin == "q"
    fold.events([(1, Event.ACKED, T0 + 20, None, None, None, None)])
    assert fold.live() == [] and fold.finished == {1: T0 + 20} and fold.max_id == 1


def test_given_fields_that_look_like_the_absent_ones_are_stored_as_given() -> None:
    """An empty key, a key "0", an empty body and priority 0 are values, not absences."""
    rows = stored([Appended(Message(1, "q", b"", "", T0, dedup_id="0")),
                   Appended(Message(2, "q", b"0", "0", T0, priority=0, delivery_base=0)),
                   Moved(2, T0 + 1, "q.dlq", "", 0, False, "q")])
    assert [(r.body, r.key, r.dedup, r.priority) for r in rows[:2]] == [
        (b"", "", "0", 0), (b"0", "0", None, 0)]
    assert (rows[2].delivery, rows[2].detail, rows[2].holder) == (0, "", None)


def test_plain_and_optioned_publishes_fold_into_one_id_order_with_their_events() -> None:
    """The store reads plain publishes, then publishes with options, then events: the fold is
    the same as reading the rows in their order."""
    changes: list[MessageChange] = [
        Appended(Message(1, "q", b"plain", None, T0)),
        Appended(Message(2, "q", b"keyed", "k", T0, priority=5)),
        Appended(Message(3, "q", b"", None, T0), body_of=1),  # a fan-out copy of 1's body
        Appended(Message(4, "q", b"plain too", None, T0)),
        Leased(2, 1, "c1", T0 + 1, "q"),
        Nacked(2, T0 + 2, T0 + 30, "later", "q"),
        Leased(4, 1, "c1", T0 + 3, "q"),
        Acked(4, T0 + 4, "q"),
    ]
    fold = folded(changes)
    plain = fold.plain()["q"]  # 1 alone was never touched: it stays compact
    assert len(plain) == 1 and [m.id for m in fold.live()] == [2, 3]
    every = sorted([*fold.live(), *filter(None, [plain.view(1, "q")])], key=lambda m: m.id)
    assert [(m.id, m.body, m.key, m.priority, m.state) for m in every] == [
        (1, b"plain", None, 0, State.READY), (2, b"keyed", "k", 5, State.DELAYED),
        (3, b"plain", None, 0, State.READY)]
    assert every[1].last_error == "later" and fold.finished == {4: T0 + 4}
    assert fold.body_of == {3: 1} and fold.max_id == 4


def test_headers_are_stored_as_json_and_fold_back_with_the_plain_and_optioned_publishes() -> None:
    """A publish with headers (and nothing else) is read with the optioned ones; its headers
    come back equal, non-ASCII and empty values included, and HISTORY shows them."""
    headers = {"content-type": "application/json", "note": "clé \"quoted\"", "empty": ""}
    changes: list[MessageChange] = [
        Appended(Message(1, "q", b"plain", None, T0)),
        Appended(Message(2, "q", b"{}", None, T0, headers=headers)),
        Appended(Message(3, "q", b"", None, T0, headers=headers), body_of=2),
    ]
    rows = stored(changes)
    assert [r.headers for r in rows] == [
        None, '{"content-type":"application/json","note":"clé \\"quoted\\"","empty":""}',
        rows[1].headers]
    assert describe(rows[1])["headers"] == headers and "headers" not in describe(rows[0])
    fold = folded(changes)
    plain = fold.plain()["q"].view(1, "q")  # no headers: it stays in the compact backlog
    assert plain is not None and (plain.body, plain.headers, plain.extra) == (b"plain", None, None)
    assert [(m.id, m.body, m.headers) for m in fold.live()] == [
        (2, b"{}", headers), (3, b"{}", headers)]
