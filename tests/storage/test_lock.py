"""One broker per log (lock.py), against a real file: a second store on the same file is
refused at open with a message that says why and what to do, and leaves the first one working;
the lock goes with the store that held it. While a store has written, other SQLite connections
are shut out too (exclusive locking mode, sqlite.py), and let in again once it is closed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from mq.storage.lock import LogInUseError
from mq.storage.sqlite import SQLiteStore
from tests.storage.log_files import AFTER_ALL, every_message, new_broker, opened, rows


def test_a_second_store_on_one_log_is_refused_and_the_first_goes_on(db_path: Path) -> None:
    async def scenario() -> None:
        first = SQLiteStore(db_path, clock=AFTER_ALL)
        async with opened(first):
            second = SQLiteStore(db_path, clock=AFTER_ALL)
            with pytest.raises(LogInUseError) as refused:
                async with opened(second):
                    pass
            message = str(refused.value)
            assert f"{db_path} is in use by another mq broker (pid {os.getpid()}" in message
            assert "Stop that broker first, or give this one another --db" in message
            assert isinstance(refused.value, sqlite3.DatabaseError)  # `mq serve` reports it
            broker = new_broker()
            broker.publish("q", b"still mine")
            await first.write(broker.take_effects().changes)
            # the store keeps SQLite's own lock once it has written: no one else gets in
            other = sqlite3.connect(db_path, isolation_level=None, timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
        other = sqlite3.connect(db_path, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # closed: its lock is given back
        other.execute("ROLLBACK")
        other.close()
        async with opened(SQLiteStore(db_path, clock=AFTER_ALL)) as recovered:
            assert [m.body for m in every_message(recovered)] == [b"still mine"]

    asyncio.run(scenario())
    assert rows(db_path, "SELECT COUNT(*) FROM log") == [(1,)]
