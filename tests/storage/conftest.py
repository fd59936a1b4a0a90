from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage.log_files import LogTarget


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mq.db"


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> LogTarget:
    """A fresh log for a test that runs against both stores: an SQLite file, then a database
    of the session's Postgres server (skipped, with how to get one, where there is none)."""
    if request.param == "sqlite":
        return LogTarget("sqlite", str(tmp_path / "mq.db"))
    return LogTarget("postgres", request.getfixturevalue("pg_url"))
