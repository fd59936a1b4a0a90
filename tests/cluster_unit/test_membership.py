"""Membership, the controller and the slot map against a real etcd (one node): brokers that
join share the slots, one that leaves gives away only its own, the controller is replaced
when it goes, and a drained broker ends up with none."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from mq.cluster.etcd import Etcd, parse_endpoints
from mq.cluster.keys import ClusterView, Keys
from mq.cluster.member import Member
from mq.cluster.slots import SLOTS
from tests.cluster_unit.etcd_node import EtcdNode

WITHIN_S = 15.0


async def until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WITHIN_S):
        while not check():
            await asyncio.sleep(0.05)


class Node:
    def __init__(self, endpoint: str, cluster: str, name: str) -> None:
        self.etcd = Etcd(endpoint)
        self.member = Member(self.etcd, cluster, name, f"127.0.0.1:{7800 + int(name[1:])}",
                             self.seen, ttl_s=2, poll_s=0.1, max_moves=SLOTS,
                             on_lapse=self.lapsed)
        self.view: ClusterView | None = None
        self.lapses = 0
        self.task = asyncio.create_task(self.member.run())

    def seen(self, view: ClusterView) -> None:
        self.view = view

    def lapsed(self) -> None:
        self.lapses += 1

    def owned(self) -> int:
        return 0 if self.view is None else len(self.view.map.slots_of(self.member.node))

    async def stop(self, leave: bool = True) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if leave:
            await self.member.leave()
        await self.etcd.close()


@asynccontextmanager
async def two_sharing(etcd_node: EtcdNode, cluster_name: str) -> AsyncIterator[list[Node]]:
    """Members b1 and b2, once both own slots; stopped (leaving) at the end."""
    nodes = [Node(etcd_node.endpoint, cluster_name, f"b{i}") for i in (1, 2)]
    try:
        await until(lambda: all(n.owned() > 0 for n in nodes), "two brokers own slots")
        yield nodes
    finally:
        for n in nodes:
            await n.stop()


def test_brokers_share_the_slots_and_a_leaver_gives_away_only_its_own(
        etcd_node: EtcdNode, cluster_name: str) -> None:
    async def scenario() -> None:
        nodes = [Node(etcd_node.endpoint, cluster_name, f"b{i}") for i in (1, 2, 3)]
        try:
            def settled() -> bool:
                v = nodes[0].view
                return (v is not None and len(v.live) == 3 and len(v.map.owners) == SLOTS
                        and all(n.owned() > SLOTS // 5 for n in nodes)
                        and len({n.view.map.epoch for n in nodes if n.view}) == 1)
            await until(settled, "three brokers share the slots")
            before = nodes[0].view
            assert before is not None and before.controller in {"b1", "b2", "b3"}
            assert sum(n.owned() for n in nodes) == SLOTS
            controller = next(n for n in nodes if n.member.node == before.controller)
            await controller.stop()
            rest = [n for n in nodes if n is not controller]

            def moved() -> bool:
                v = rest[0].view
                return (v is not None and v.controller not in (None, before.controller)
                        and set(o.node for o in v.map.owners.values()) <= {
                            n.member.node for n in rest})
            await until(moved, "the leaver's slots go to the others")
            after = rest[0].view
            assert after is not None and after.map.epoch > before.map.epoch
            kept = [s for s, o in before.map.owners.items() if o.node != before.controller]
            assert all(after.map.owners[s] == before.map.owners[s] for s in kept)
        finally:
            for n in nodes:
                if not n.task.done():
                    await n.stop()

    asyncio.run(scenario())


def test_a_drained_broker_ends_up_with_no_slots(etcd_node: EtcdNode, cluster_name: str) -> None:
    async def scenario() -> None:
        async with two_sharing(etcd_node, cluster_name) as nodes:
            await nodes[0].etcd.put(Keys(cluster_name).leaving("b2"), b"")
            await until(lambda: nodes[0].owned() == SLOTS and nodes[1].owned() == 0,
                        "b2 is drained")
            view = nodes[1].view
            assert view is not None and view.map.brokers["b2"].leaving

    asyncio.run(scenario())


def test_a_member_whose_lease_lapsed_drops_its_slots_and_joins_again_under_a_new_lease(
        etcd_node: EtcdNode, cluster_name: str) -> None:
    async def scenario() -> None:
        async with two_sharing(etcd_node, cluster_name) as nodes:
            b2 = nodes[1]
            old = b2.member.lease
            assert old is not None
            await nodes[0].etcd.revoke(old)  # as if b2 had been paused past its TTL
            await until(lambda: b2.lapses == 1, "b2 finds its lease lapsed")
            await until(lambda: b2.member.lease not in (None, old) and b2.owned() > 0,
                        "b2 joins again under a new lease and gets slots again")
            assert b2.lapses == 1

    asyncio.run(scenario())


def test_a_member_that_steps_out_gives_its_slots_away_and_gets_some_back_on_rejoin(
        etcd_node: EtcdNode, cluster_name: str) -> None:
    async def scenario() -> None:
        async with two_sharing(etcd_node, cluster_name) as nodes:
            b2 = nodes[1]
            await b2.member.step_out()
            assert b2.member.lease is None and not b2.member.in_cluster
            await until(lambda: nodes[0].owned() == SLOTS and b2.owned() == 0,
                        "b2's slots go to b1, and b2 still follows the map")
            view = b2.view
            assert view is not None and "b2" not in view.live
            b2.member.rejoin()
            await until(lambda: b2.owned() > 0, "b2 is a member again and gets slots")
            assert b2.lapses == 0  # stepping out is no lapse

    asyncio.run(scenario())


def test_endpoints_are_checked() -> None:
    assert parse_endpoints("127.0.0.1:2379,127.0.0.2:2379") == [("127.0.0.1", 2379),
                                                                ("127.0.0.2", 2379)]
    for bad in ("127.0.0.1", "h:0", "a:1,b:2", ":2379"):
        with pytest.raises(ValueError):
            parse_endpoints(bad)


def test_the_cli_shows_the_cluster_and_drains_a_broker(etcd_node: EtcdNode,
                                                       cluster_name: str) -> None:
    async def mq(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mq", "cluster", *args, "--etcd", etcd_node.endpoint, "--cluster",
            cluster_name, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    async def scenario() -> None:
        async with two_sharing(etcd_node, cluster_name):
            code, out, _ = await mq("status", "--json")
            status = json.loads(out)
            assert code == 0 and set(status["brokers"]) == {"b1", "b2"}
            assert status["controller"] in {"b1", "b2"} and status["map_epoch"] > 0
            code, out, _ = await mq("status")
            assert code == 0 and "1024 of 1024 slots assigned" in out
            code, out, _ = await mq("drain", "b2", "--timeout-s", "20")
            assert code == 0 and out.strip().endswith("b2 is drained: it owns no slots and may "
                                                      "be stopped")
            code, _, err = await mq("drain", "nobody")
            assert code == 1 and "no broker 'nobody'" in err

    asyncio.run(scenario())
