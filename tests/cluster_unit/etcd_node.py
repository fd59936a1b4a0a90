"""One throwaway etcd server on 127.0.0.1 for the cluster's own tests (the 3-node one with
faults lives in tests/cluster/). Started once per test session by its PID and killed by it;
each test takes a cluster name of its own, so they share it without seeing each other.

Without /usr/bin/etcd (Debian: apt-get install etcd-server) or aetcd (pip install
'mq[dev]'), the tests that need it are skipped saying so."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import free_port

ETCD = Path(os.environ.get("MQ_TEST_ETCD", "/usr/bin/etcd"))
READY_WITHIN_S = 20.0
_names = itertools.count(1)


def why_no_etcd() -> str | None:
    if not ETCD.exists():
        return f"no etcd at {ETCD}: apt-get install etcd-server (or set MQ_TEST_ETCD)"
    try:
        import aetcd  # noqa: F401
    except ModuleNotFoundError:
        return "aetcd is not installed: pip install 'mq[dev]'"
    return None


class EtcdNode:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mq-etcd-"))
        self.port, peer = free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log = open(self.root / "etcd.log", "wb")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [str(ETCD), "--name", "t", "--data-dir", str(self.root / "data"),
             "--listen-client-urls", f"http://{self.endpoint}",
             "--advertise-client-urls", f"http://{self.endpoint}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"t=http://127.0.0.1:{peer}",
             "--unsafe-no-fsync"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + READY_WITHIN_S
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"etcd did not start: {(self.root / 'etcd.log').read_text()}")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd_node() -> Iterator[EtcdNode]:
    why = why_no_etcd()
    if why is not None:
        pytest.skip(why)
    node = EtcdNode()
    yield node
    node.stop()


@pytest.fixture
def cluster_name() -> str:
    return f"t{os.getpid()}-{next(_names)}"
