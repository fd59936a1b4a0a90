"""The log file's format version (PRAGMA user_version) against real files: a new file is stamped,
an older one is read and upgraded, a newer one is refused untouched (sqlite.py, "Versions")."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mq.core.events import Event
from mq.core.model import State
from mq.storage.rows import BATCHED
from mq.storage.sqlite import SCHEMA_VERSION, LogVersionError, SQLiteStore
from tests.storage.log_files import (
    AFTER_ALL,
    T0,
    by_id,
    every_message,
    lease_one,
    new_broker,
    old_log,
    opened,
    reopen,
    rows,
    write_once,
)


def set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    finally:
        conn.close()


def history(path: Path, msg_id: int) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        store = SQLiteStore(path, clock=AFTER_ALL)
        async with opened(store):
            return await store.history(msg_id)

    return asyncio.run(read())


def test_a_new_log_gets_the_current_version(db_path: Path) -> None:
    asyncio.run(reopen(db_path))
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_a_log_without_a_version_is_version_1_and_is_upgraded_in_place(db_path: Path) -> None:
    """A file of the first format (no version stamp; a goodbye was logged as a nack with no
    delay) reads as it always did, and is stamped with the current version at open."""
    # Rows as the first format wrote them: 1 leased by c1, which said goodbye (a nack without
    # delay); 2 acked; 3 nacked with a delay and an error.
    old_log(db_path, 1, f"""
            INSERT INTO log (msg_id, kind, at, queue, body, priority)
                VALUES (1, 0, {T0}, 'q', x'61', 0), (2, 0, {T0}, 'q', x'62', 0),
                       (3, 0, {T0}, 'q', x'63', 0);
            INSERT INTO log (msg_id, kind, at, delivery, holder) VALUES (1, 1, {T0}, 1, 'c1');
            INSERT INTO log (msg_id, kind, at, ready_at) VALUES (1, 3, {T0 + 1}, {T0 + 1});
            INSERT INTO log (msg_id, kind, at, delivery, holder) VALUES (2, 1, {T0}, 1, 'h1');
            INSERT INTO log (msg_id, kind, at) VALUES (2, 2, {T0 + 2});
            INSERT INTO log (msg_id, kind, at, delivery, holder) VALUES (3, 1, {T0}, 1, 'h1');
            INSERT INTO log (msg_id, kind, at, ready_at, detail)
                VALUES (3, 3, {T0 + 3}, {T0 + 63}, 'later');
        """)

    for _ in range(2):  # the upgraded file reads the same again
        recovered = asyncio.run(reopen(db_path))
        messages = by_id(recovered)
        assert sorted(messages) == [1, 3]
        assert (messages[1].state, messages[1].deliveries, messages[1].deaths) == (
            State.READY, 1, 0)
        assert (messages[3].state, messages[3].ready_at, messages[3].last_error) == (
            State.DELAYED, T0 + 63, "later")
        assert recovered.next_id == 4
        assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert [e["event"] for e in history(db_path, 1)] == ["published", "leased", "nacked"]


def test_a_log_of_a_newer_version_is_refused_and_left_as_it_was(db_path: Path) -> None:
    broker = new_broker()
    broker.publish("q", b"x")
    asyncio.run(write_once(db_path, broker))
    set_version(db_path, SCHEMA_VERSION + 1)
    before = rows(db_path, "SELECT * FROM log")

    with pytest.raises(LogVersionError) as refused:
        asyncio.run(reopen(db_path))
    message = str(refused.value)
    assert f"format version {SCHEMA_VERSION + 1}" in message
    assert f"reads versions up to {SCHEMA_VERSION}" in message
    assert "Run an mq that knows that version" in message
    assert isinstance(refused.value, sqlite3.DatabaseError)  # `mq serve` reports these cleanly
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert rows(db_path, "SELECT * FROM log") == before


def test_a_goodbye_is_logged_as_its_own_event_not_as_a_nack(db_path: Path) -> None:
    """A holder that leaves (no death) gives its lease back as LEFT, with the holder; after a
    restart the message is ready with its delivery count and no death."""
    broker = new_broker()
    broker.publish("q", b"x")
    lease_one(broker, "c1")
    broker.release_holder("c1", died=False)
    asyncio.run(write_once(db_path, broker))

    assert rows(db_path, "SELECT kind, holder FROM log ORDER BY seq") == [
        (Event.PUBLISHED, None), (Event.LEASED, "c1"), (Event.LEFT, "c1")]
    [msg] = every_message(asyncio.run(reopen(db_path)))
    assert (msg.state, msg.deliveries, msg.deaths) == (State.READY, 1, 0)
    assert [(e["event"], e.get("holder")) for e in history(db_path, 1)] == [
        ("published", None), ("leased", "c1"), ("released (holder left)", "c1")]


def test_a_version_2_log_gains_headers_and_reads_as_it_did(db_path: Path) -> None:
    """A file of version 2 (no headers column) is upgraded in place: every message it holds
    reads as before, with no headers, and the upgraded file takes messages with headers."""
    old_log(db_path, 2, f"""
        INSERT INTO log (msg_id, kind, at, queue, body, key, priority, expires_at, dedup)
            VALUES (1, 0, {T0}, 'q', x'61', NULL, 0, NULL, NULL),
                   (2, 0, {T0}, 'q', x'62', 'k', 7, {T0 + 500}, 'd-2');
        INSERT INTO log (msg_id, kind, at, queue, priority, body_of)
            VALUES (3, 0, {T0}, 'r', 0, 2);
        INSERT INTO log (msg_id, kind, at, delivery, holder) VALUES (2, 1, {T0 + 1}, 1, 'c1');
        INSERT INTO log (msg_id, kind, at, holder) VALUES (2, 9, {T0 + 2}, 'c1');
    """)

    recovered = asyncio.run(reopen(db_path))
    messages = by_id(recovered)
    assert sorted(messages) == [1, 2, 3]
    one = messages[1]
    assert (one.body, one.key, one.priority, one.headers, one.extra) == (b"a", None, 0, None, None)
    two = messages[2]
    assert (two.key, two.priority, two.expires_at, two.dedup_id, two.deliveries,
            two.headers) == ("k", 7, T0 + 500, "d-2", 1, None)
    assert (messages[3].queue, messages[3].body, messages[3].headers) == ("r", b"b", None)
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(4,)]
    assert rows(db_path, "SELECT count(*) FROM log WHERE headers IS NOT NULL") == [(0,)]
    assert "headers" not in history(db_path, 2)[0]

    broker = new_broker()
    broker.restore({}, recovered.messages, recovered.next_id)
    broker.publish("q", b"with", headers={"traceparent": "00-ab-cd-01"})
    asyncio.run(write_once(db_path, broker))
    assert by_id(asyncio.run(reopen(db_path)))[4].headers == {"traceparent": "00-ab-cd-01"}


def test_a_version_3_log_reads_as_it_did_and_takes_batch_rows_after_its_upgrade(
        db_path: Path) -> None:
    """A file of version 3 (a row per lease and per ack) is stamped 4 at open, with its rows as
    they were, and reads the same: 1 acked, 2 and 3 back with one delivery each. Leases and
    acks written after the upgrade are batch rows, and the file then reads both kinds."""
    old_log(db_path, 3, f"""
        INSERT INTO log (msg_id, kind, at, queue, body, priority)
            VALUES (1, 0, {T0}, 'q', x'61', 0), (2, 0, {T0}, 'q', x'62', 0),
                   (3, 0, {T0}, 'q', x'63', 0);
        INSERT INTO log (msg_id, kind, at, delivery, holder)
            VALUES (1, 1, {T0 + 1}, 1, 'c1'), (2, 1, {T0 + 1}, 1, 'c1'), (3, 1, {T0 + 1}, 1, 'c1');
        INSERT INTO log (msg_id, kind, at) VALUES (1, 2, {T0 + 2});
    """)
    before = rows(db_path, "SELECT * FROM log ORDER BY seq")

    recovered = asyncio.run(reopen(db_path))
    assert [(m.id, m.body, m.deliveries) for m in every_message(recovered)] == [
        (2, b"b", 1), (3, b"c", 1)]
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(4,)]
    assert rows(db_path, "SELECT * FROM log ORDER BY seq") == before
    assert [e["event"] for e in history(db_path, 1)] == ["published", "leased", "acked"]

    broker = new_broker()
    broker.restore({}, recovered.messages, recovered.next_id, plain=recovered.plain)
    receipts = [(d.msg_id, d.delivery) for d in broker.lease("q", "c2", max_count=2)]
    assert receipts == [(2, 2), (3, 2)]
    broker.ack_many(receipts[:1], "c2")
    asyncio.run(write_once(db_path, broker))
    assert rows(db_path, "SELECT kind FROM log WHERE seq > 7 ORDER BY seq") == [
        (BATCHED + Event.LEASED,), (Event.ACKED,)]
    assert [(m.id, m.deliveries) for m in every_message(asyncio.run(reopen(db_path)))] == [(3, 2)]
    assert [e["event"] for e in history(db_path, 3)] == ["published", "leased", "leased"]
