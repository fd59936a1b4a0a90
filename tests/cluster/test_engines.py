"""The cluster tests' own machinery, which works before any broker can serve a cluster: the 3-node
etcd (up, leader killed and replaced, the member restarted into the existing cluster), and the
scenario runner with its history checker, end to end against one real broker on Postgres."""

from __future__ import annotations

import asyncio
import time

import pytest
from mq_client import AsyncClient

from tests.cluster.etcd import EtcdCluster
from tests.cluster.history import (
    AckConfirmed,
    BrokerKilled,
    Delivered,
    History,
    Lease,
    PublishConfirmed,
    check,
    leases_from_events,
)
from tests.cluster.scenario import run_scenario
from tests.harness import BrokerProcess, free_port, wait_until


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
def test_the_scenario_runner_and_its_checker_pass_on_one_broker_on_postgres(
        pg_url: str, figures: list[str]) -> None:
    """No cluster and no fault: the scenario runner (producers, the keyed group, the drain, the
    history read back) and the checker, over real sockets against one real broker, must find
    nothing wrong; and each kill -9 it notes gets a recovery time."""
    port = str(free_port())  # a restart comes back on it, where the clients look for it
    with BrokerProcess(pg_url, "--port", port, "--keep-history-s", "3600") as broker:
        async def nemesis(history: History) -> None:
            await asyncio.sleep(3)
            history.brokers_killed.append(BrokerKilled("one", time.time()))
            broker.kill()
            await asyncio.to_thread(broker.start)  # on its port: the clients reconnect

        report = asyncio.run(run_scenario("one broker, kill -9 and restart", broker.url,
                                          nemesis, 8))
    figures.append(report.line())
    # A single broker voids its leases when it restarts (protocol.md 4), so double leases may
    # show here: that is what the cluster must not do. Everything else must hold.
    v = report.verdict
    assert not (v.lost or v.unacked or v.acked_then_delivered or v.phantom_deliveries
                or v.ids_reused), v.summary()
    assert v.confirmed > 0
    assert len(report.recovery.times_s) == 1 and report.recovery.max_s < float("inf")


@pytest.mark.usefixtures("cluster_enabled")
def test_the_checker_catches_a_real_broker_voiding_a_live_lease(pg_url: str) -> None:
    """A single broker restarted voids the leases from before it (protocol.md 4): the message
    goes to a second consumer while the first, alive and connected, still holds it. Read back
    from the broker's own history, the checker must call that a double lease."""
    port = str(free_port())
    with BrokerProcess(pg_url, "--port", port, "--keep-history-s", "3600") as broker:
        history = History()
        leases = asyncio.run(_void_a_live_lease(broker, history))
    verdict = check(history, leases)
    assert [(o.first.delivery, o.second.delivery) for o in verdict.double_leases] == [(1, 2)]
    assert verdict.double_leases[0].first.holder.startswith("wa/")
    assert not verdict.lost and not verdict.unacked


async def _void_a_live_lease(broker: BrokerProcess, history: History) -> list[Lease]:
    holder = await AsyncClient.connect(broker.url)
    try:
        msg_id = await holder.publish("held", b"job")
        history.confirmed.append(PublishConfirmed("p", 0, "held", msg_id, time.time()))
        await holder.hello("wa")
        (first,) = await holder.get("held", lease_s=60)
        history.delivered.append(Delivered("wa", first.msg_id, first.deliveries, time.time()))
        await asyncio.to_thread(broker.kill)  # wa lives on, its lease 60 s from its deadline
        await asyncio.to_thread(broker.start)
        async with AsyncClient.connect(broker.url) as mq:
            await mq.hello("wb")
            (second,) = await mq.get("held", lease_s=60, wait_s=5)
            history.delivered.append(Delivered("wb", msg_id, second.deliveries, time.time()))
            await mq.ack(second)
            history.acked.append(AckConfirmed("wb", msg_id, second.deliveries, time.time()))
            return leases_from_events(msg_id, await mq.history(msg_id), 60)
    finally:
        await holder.close()
