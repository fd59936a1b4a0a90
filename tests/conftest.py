from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BrokerProcess
from tests.pg import pg_server, pg_url  # noqa: F401 (fixtures for every test folder)

_made_pycache: list[tuple[str, str]] = []  # (the directory, PYTHONDONTWRITEBYTECODE's value)


def pytest_configure(config: pytest.Config) -> None:
    """Where PYTHONDONTWRITEBYTECODE is set, every process a test starts (a broker, a CLI run,
    a worker) would compile mq and the SDK from source again: a few hundred ms of CPU each,
    hundreds of times a run. Their bytecode goes to a directory of this run instead (outside
    the checkout, which stays as clean as the variable meant), removed at the end. An xdist
    worker inherits the directory from the run that started it."""
    dont_write = os.environ.get("PYTHONDONTWRITEBYTECODE")
    if not dont_write or os.environ.get("PYTHONPYCACHEPREFIX"):
        return  # bytecode is cached as usual, or where the caller said
    _made_pycache.append((tempfile.mkdtemp(prefix="mq-test-pycache-"), dont_write))
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = _made_pycache[0][0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for prefix, dont_write in _made_pycache:
        shutil.rmtree(prefix, ignore_errors=True)
        del os.environ["PYTHONPYCACHEPREFIX"]
        os.environ["PYTHONDONTWRITEBYTECODE"] = dont_write
    _made_pycache.clear()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker process on a fresh SQLite file, killed after the test."""
    with BrokerProcess(tmp_path / "mq.db") as proc:
        yield proc
