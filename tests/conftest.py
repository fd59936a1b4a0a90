from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BrokerProcess
from tests.pg import pg_server, pg_url  # noqa: F401 (fixtures for every test folder)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker process on a fresh SQLite file, killed after the test."""
    with BrokerProcess(tmp_path / "mq.db") as proc:
        yield proc
