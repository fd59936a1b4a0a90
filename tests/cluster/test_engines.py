"""The cluster tests' own machinery, which works before any broker can serve a cluster: the 3-node
etcd (up, leader killed and replaced, the member restarted into the existing cluster), and the
workload with the history checker run end to end against one real broker on Postgres."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster.etcd import EtcdCluster
from tests.cluster.history import History, Lease, check, recovery
from tests.cluster.workload import Workload, queue_names
from tests.harness import BrokerProcess, wait_until


def test_three_members_on_three_addresses_agree_on_one_leader(etcd: EtcdCluster) -> None:
    assert [m.host for m in etcd.members] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert all(etcd.healthy(m.name) for m in etcd.members)
    leader = etcd.leader()
    assert leader in {"e1", "e2", "e3"}
    revision = etcd.put("/mq/test/a", "1", via="e1")
    assert all(etcd.get("/mq/test/a", via=m.name) == "1" for m in etcd.members)
    assert etcd.put("/mq/test/a", "2", via="e3") > revision


def test_a_killed_leader_is_replaced_and_comes_back_as_a_member(etcd: EtcdCluster) -> None:
    old = etcd.kill_leader()
    assert etcd.procs[old].poll() is not None
    killed_at = time.monotonic()
    new = wait_until(etcd.leader, "the two members left elected a leader", timeout_s=20)
    assert new != old
    wait_until(lambda: _writes(etcd), "a write went through after the leader's kill -9",
               timeout_s=20, interval_s=0.05)
    print(f"etcd: a write again {time.monotonic() - killed_at:.2f} s after the leader's kill -9")
    etcd.put("/mq/test/while-down", "yes")
    etcd.restart(old)
    # The restarted member caught up on what was written while it was dead.
    wait_until(lambda: etcd.get("/mq/test/while-down", via=old) == "yes",
               f"{old} served the write made while it was down")
    assert etcd.leader() is not None
    assert len(etcd.running()) == 3


def _writes(etcd: EtcdCluster) -> bool:
    try:
        etcd.put("/mq/test/probe", str(time.time()))
    except OSError:
        return False
    return True


@pytest.mark.usefixtures("cluster_enabled")
def test_the_workload_and_its_checker_pass_on_one_broker_on_postgres(pg_url: str) -> None:
    """No cluster and no fault: the producers, the keyed group and the checker, end to end over
    real sockets against a real broker, must find nothing wrong."""
    queues = queue_names(3)
    with BrokerProcess(pg_url, "--keep-history-s", "3600") as broker:
        leases, history = asyncio.run(_run_clean(broker.url, queues))
    verdict = check(history, leases)
    assert verdict.ok, verdict.summary()
    assert verdict.confirmed == 2 * 3 * 20
    assert len(leases) >= verdict.confirmed
    assert recovery(history, queues).times_s == ()


async def _run_clean(url: str, queues: list[str]) -> tuple[list[Lease], History]:
    w = Workload(url, queues)
    joined = [asyncio.Event() for _ in range(2)]
    consumers = [asyncio.create_task(w.consume(f"w{i}", joined[i])) for i in range(2)]
    async with asyncio.timeout(30):
        await asyncio.gather(*(j.wait() for j in joined))
        await asyncio.gather(*(w.produce(f"p{i}", every_s=0.01, max_per_queue=20)
                               for i in range(2)))
        await w.drain()
        await asyncio.gather(*consumers)
    return await w.read_leases(), w.history
