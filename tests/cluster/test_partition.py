"""Partitions (design note C5 and C6): one broker, alone in a network namespace, cut off from
etcd or from the database for 20 s while the workload runs; the other two brokers on loopback.
The engines listen on loopback and on the test bridge's addresses (tests/cluster/netns.py).

The first test proves the cut itself, with no broker: it applies to a connection already open,
it spares the addresses not named, and healing restores the same connection. All of them
skip, saying why, where network namespaces are refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.cluster.brokers import Cluster
from tests.cluster.etcd import EtcdCluster
from tests.cluster.history import BrokerKilled, History
from tests.cluster.netns import Partitionable, why_no_netns
from tests.cluster.scenario import SCENARIO_TIMEOUT_S, judge, run_scenario
from tests.pg import PgServer, why_no_postgres

CUT_S = 20.0


@pytest.fixture
def network(cluster_enabled: None) -> Iterator[Partitionable]:
    reason = why_no_netns()
    if reason is not None:
        pytest.skip(reason)
    net = Partitionable().up()
    try:
        yield net
    finally:
        net.down()


@pytest.fixture
def bridged_etcd(network: Partitionable) -> Iterator[EtcdCluster]:
    """The 3-node etcd, each member also on its bridge address."""
    etcd = EtcdCluster(extra_hosts=network.addrs.etcd)
    try:
        yield etcd.start()
    finally:
        etcd.stop()


class Probe:
    """An HTTP connection opened from inside the namespace and kept open, asked on demand."""

    def __init__(self, net: Partitionable, host: str, port: int) -> None:
        script = (
            "import socket, sys, time\n"
            f"s = socket.create_connection(({host!r}, {port}), timeout=2)\n"
            "print('open', flush=True)\n"
            "for _ in sys.stdin:\n"
            "    try:\n"
            "        s.sendall(b'GET /health HTTP/1.1\\r\\nHost: e\\r\\n\\r\\n')\n"
            "        time.sleep(0.3)\n"
            "        print('answered' if s.recv(65536) else 'closed', flush=True)\n"
            "    except OSError as e:\n"
            "        print('silent', e, flush=True)\n")
        self.proc = subprocess.Popen([*net.prefix, sys.executable, "-c", script],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._line() == "open"

    def ask(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        return self._line().split()[0]

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def test_a_cut_silences_open_connections_to_its_hosts_only_and_heals(
        network: Partitionable, bridged_etcd: EtcdCluster) -> None:
    e1, e2 = bridged_etcd.members[:2]
    to_e1 = Probe(network, network.addrs.etcd[0], e1.client_port)
    to_e2 = Probe(network, network.addrs.etcd[1], e2.client_port)
    try:
        assert (to_e1.ask(), to_e2.ask()) == ("answered", "answered")
        network.cut([network.addrs.etcd[0]])
        assert (to_e1.ask(), to_e2.ask()) == ("silent", "answered")
        network.heal()
        assert to_e1.ask() == "answered"  # the same connection, back after the heal
    finally:
        to_e1.kill()
        to_e2.kill()


@pytest.fixture
def bridged_pg(network: Partitionable) -> Iterator[PgServer]:
    """A Postgres of its own on loopback and the bridge, trusting the test subnet."""
    reason = why_no_postgres()
    if reason is not None:
        pytest.skip(reason)
    server = PgServer(listen_addresses=f"127.0.0.1,{network.addrs.postgres}")
    with open(server.data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all 10.77.{network.addrs.subnet}.0/24 trust\n")
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def split_cluster(cluster_broker: None, network: Partitionable, bridged_etcd: EtcdCluster,
                  bridged_pg: PgServer) -> Iterator[Cluster]:
    """b1 and b3 on loopback, b2 inside the namespace reaching the engines over the bridge."""
    db = bridged_pg.new_database()
    c = Cluster(f"t{os.getpid()}", bridged_etcd.endpoints, db)
    bridge_etcd = ",".join(f"{h}:{m.client_port}"
                           for h, m in zip(network.addrs.etcd, bridged_etcd.members, strict=True))
    bridge_db = db.replace("@127.0.0.1:", f"@{network.addrs.postgres}:")
    try:
        c.add("b1")
        # --insecure: the bridge address is beyond loopback, which `mq serve` refuses to serve
        # open by default; it exists only on the test's bridge and in its namespace.
        c.add("b2", host=network.addrs.broker, prefix=network.prefix, etcd=bridge_etcd,
              db=bridge_db, args=["--insecure"])
        c.add("b3")
        c.wait_balanced()
        yield c
    finally:
        c.stop()


@pytest.mark.timeout(SCENARIO_TIMEOUT_S)
@pytest.mark.parametrize("engine", ["etcd", "database"])
def test_a_broker_cut_off_for_20_s(engine: str, split_cluster: Cluster, network: Partitionable,
                                   figures: list[str]) -> None:
    """Cut from etcd, b2's lease expires and its slots move; it is fenced by epoch, so it
    commits nothing for them. Cut from the database, b2 gives up its etcd lease after
    --cluster-store-timeout-s, and its slots move. Either way: no loss, no double lease, and
    once healed b2 joins again and gets its share back."""
    hosts = network.addrs.etcd if engine == "etcd" else (network.addrs.postgres,)
    b2_slots_during_cut: list[int] = []

    async def nemesis(history: History) -> None:
        await asyncio.sleep(5)
        history.brokers_killed.append(BrokerKilled("b2", time.time(), f"cut from {engine}"))
        network.cut(hosts)
        await asyncio.sleep(CUT_S)
        b2_slots_during_cut.append(
            await asyncio.to_thread(lambda: split_cluster.slots_owned().get("b2", 0)))
        network.heal()
        await asyncio.sleep(15)

    report = asyncio.run(run_scenario(f"b2 cut from {engine} 20 s", split_cluster.seeds,
                                      nemesis, 40))
    judge(report, split_cluster, figures)
    assert b2_slots_during_cut == [0], "b2 still owned slots at the end of its cut"
    assert all(b.running() for b in split_cluster.brokers.values()), split_cluster.logs()
    split_cluster.wait_balanced()
