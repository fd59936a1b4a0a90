"""Fixtures of the cluster tests: a 3-node etcd, a database of the session's Postgres
(tests/pg.py), and a figures list printed at the end of the run.

Only `make test-cluster` (MQ_TEST_CLUSTER=1) starts engines: under a plain `make test` these
tests skip, saying so, and only the pure history-checker tests run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from mq_client import Client
from mq_client.slots import SLOTS

from tests.cluster.brokers import Cluster, why_no_cluster_broker
from tests.cluster.etcd import EtcdCluster, why_no_etcd
from tests.harness import wait_until

ENABLED = os.environ.get("MQ_TEST_CLUSTER") == "1"
NOT_ENABLED = ("the cluster tests start etcd, Postgres and several brokers: run them with "
               "`make test-cluster` (MQ_TEST_CLUSTER=1)")
FIGURES: list[str] = []



def skip_unless_enabled() -> None:
    if not ENABLED:
        pytest.skip(NOT_ENABLED)
    reason = why_no_etcd()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def cluster_enabled() -> None:
    """Skips the test unless engines may start here (MQ_TEST_CLUSTER=1 and etcd installed)."""
    skip_unless_enabled()


@pytest.fixture
def cluster_broker() -> None:
    """Skips the test unless this checkout's broker serves clusters. Ask for it first, so a
    skip starts no engine."""
    reason = why_no_cluster_broker()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def etcd() -> Iterator[EtcdCluster]:
    """Three etcd members on 127.0.0.1-3, healthy with a leader; killed by PID afterwards."""
    skip_unless_enabled()
    cluster = EtcdCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def settled_cluster(cluster_broker: None, etcd: EtcdCluster, pg_url: str) -> Iterator[Cluster]:
    """Brokers b1, b2, b3 of one cluster, each serving its share of the slots: the controller
    has finished moving slots to b2 and b3 as they joined. Killed by PID afterwards."""
    c = Cluster(f"s{os.getpid()}", etcd.endpoints, pg_url)
    try:
        for i in (1, 2, 3):
            c.add(f"b{i}")
        c.wait_moves_done(lambda owned: sum(1 for n in owned.values() if n) == 3)
        wait_until(lambda: all_slots_served(c), "every broker loaded the slots the map gives it",
                   timeout_s=60, interval_s=0.25)
        yield c
    finally:
        c.stop()


def all_slots_served(cluster: Cluster) -> bool:
    """Whether the running brokers serve all 1,024 slots, none still loading."""
    served = 0
    for broker in cluster.brokers.values():
        if broker.running():
            with Client.connect(f"mq://{broker.addr}", timeout_s=5) as one:
                server = one.stats()["server"]
            if server["slots_loading"]:
                return False
            served += server["slots_owned"]
    return served == SLOTS


@pytest.fixture
def figures() -> list[str]:
    """Lines a scenario reports for the closing note; printed once the run ends."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("cluster figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
