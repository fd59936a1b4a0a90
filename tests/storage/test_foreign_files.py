"""Whose file is it (sqlite.py, "Whose file"): against real files, mq takes only an mq log or a
file with nothing in it, and refuses another program's SQLite database untouched."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mq.storage.sqlite import APPLICATION_ID, NotAnMqLogError
from tests.storage.log_files import every_message, new_broker, reopen, rows, write_once


def make_db(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def test_another_programs_database_is_refused_untouched(db_path: Path) -> None:
    make_db(db_path, "CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');"
                     "CREATE TABLE orders (id INTEGER);")
    before = db_path.read_bytes()
    with pytest.raises(NotAnMqLogError) as refused:
        asyncio.run(reopen(db_path))
    message = str(refused.value)
    assert f"{db_path} is not an mq log" in message
    assert "other tables (orders, users)" in message
    assert "Give mq a path of its own with --db" in message
    assert isinstance(refused.value, sqlite3.DatabaseError)  # `mq serve` reports it cleanly
    assert db_path.read_bytes() == before
    assert rows(db_path, "SELECT name FROM sqlite_master") == [("users",), ("orders",)]


def test_a_database_stamped_by_another_program_is_refused(db_path: Path) -> None:
    """Even with tables named like mq's: the application id says whose it is."""
    make_db(db_path, "PRAGMA application_id = 1234; CREATE TABLE log (x); "
                     "CREATE TABLE queues (y);")
    before = db_path.read_bytes()
    with pytest.raises(NotAnMqLogError, match=r"application id 0x000004d2"):
        asyncio.run(reopen(db_path))
    assert db_path.read_bytes() == before


@pytest.mark.parametrize("content", ["", "PRAGMA user_version = 7;"])
def test_a_file_with_no_tables_becomes_an_mq_log(db_path: Path, content: str) -> None:
    db_path.touch()
    make_db(db_path, content)
    recovered = asyncio.run(reopen(db_path))
    assert every_message(recovered) == []
    assert rows(db_path, "PRAGMA application_id") == [(APPLICATION_ID,)]


def test_a_new_log_is_stamped_and_an_unstamped_mq_log_is_stamped_at_open(db_path: Path) -> None:
    broker = new_broker()
    broker.publish("q", b"x")
    asyncio.run(write_once(db_path, broker))
    assert rows(db_path, "PRAGMA application_id") == [(APPLICATION_ID,)]
    make_db(db_path, "PRAGMA application_id = 0;")  # as logs were written before the stamp
    [msg] = every_message(asyncio.run(reopen(db_path)))
    assert msg.body == b"x"
    assert rows(db_path, "PRAGMA application_id") == [(APPLICATION_ID,)]
