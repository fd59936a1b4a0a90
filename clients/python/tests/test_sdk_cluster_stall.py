"""A cluster client whose broker stops answering (paused, say), against two fake brokers that
say a slot map: once the map, read from the other broker, gives the slot to that one, the
client leaves the stalled broker and sends there what is safe to send again (and its
subscription); while the map still names the stalled broker, the client waits for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fake_broker import FakeBroker, Hook, ThreadedFakeBroker

from mq_client import AsyncClient, Client, OutcomeUnknown

CHECK_S = 0.2  # owner_check_s in these tests: the map is looked at every 0.2 s of silence
PAUSED_S = 30.0  # longer than any test: a paused broker answers nothing in a test's time


@dataclass
class ClusterMap:
    """The map both fake brokers say: every slot at `owner` (host:port)."""

    owner: str
    epoch: int = 1

    def reply(self) -> dict[str, Any]:
        return {"ok": True, "cluster": "t", "map_epoch": self.epoch, "slots": [[0, 1023, "n", self.owner]]}

    def move_to(self, addr: str) -> None:
        self.owner, self.epoch = addr, self.epoch + 1


def answering(cluster_map: ClusterMap, stalls: dict[str, float] | None = None,
              subscribed: asyncio.Event | None = None) -> Hook:
    """A broker's hook: says the map; holds each request whose op is in `stalls` that long
    (nothing more on its connection is read meanwhile, as when its process is stopped); sets
    `subscribed` at a `sub`."""

    async def hook(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["op"] == "cluster":
            return cluster_map.reply()
        if request["op"] == "sub" and subscribed is not None:
            subscribed.set()
        await asyncio.sleep((stalls or {}).get(request["op"], 0.0))
        return None

    return hook


def addr(broker: FakeBroker) -> str:
    return f"127.0.0.1:{broker.port}"


def sent(broker: FakeBroker, op: str) -> list[dict[str, Any]]:
    return [s.request for s in broker.seen if s.op == op]


def run(scenario: Callable[[FakeBroker, FakeBroker], Awaitable[None]]) -> None:
    """`scenario(a, b)` on two fresh fake brokers; no task may outlive it."""

    async def main() -> None:
        a, b = await FakeBroker().start(), await FakeBroker().start()
        try:
            await scenario(a, b)
        finally:
            await a.stop()
            await b.stop()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_a_publish_stalled_at_a_broker_that_lost_its_slot_goes_to_the_new_owner() -> None:
    async def scenario(a: FakeBroker, b: FakeBroker) -> None:
        cluster_map = ClusterMap(addr(a))
        subscribed_at_b = asyncio.Event()
        a.on_request = answering(cluster_map, {"pub": PAUSED_S})
        b.on_request = answering(cluster_map, subscribed=subscribed_at_b)
        async with AsyncClient.connect(f"mq://{addr(a)},{addr(b)}", owner_check_s=CHECK_S) as client:
            sub = await client.subscribe("orders", prefetch=5)
            publishing = asyncio.create_task(client.publish("orders", b"x"))
            await asyncio.sleep(3 * CHECK_S)
            assert not publishing.done()  # the map still names a: the client waits for it
            assert sent(b, "cluster") and not sent(b, "pub")  # ... having looked at b's map
            cluster_map.move_to(addr(b))  # a's lease lapsed, b owns the slot
            async with asyncio.timeout(5):
                await publishing
                await subscribed_at_b.wait()  # the subscription followed its queue
            await sub.close()
        (at_a,), (at_b,) = sent(a, "pub"), sent(b, "pub")
        assert at_a["dedup_id"] == at_b["dedup_id"]  # the same publish: stored once
        assert sent(b, "sub")[0]["queue"] == "orders"

    run(scenario)


def test_a_request_at_a_slow_broker_that_still_owns_the_slot_waits_for_it() -> None:
    async def scenario(a: FakeBroker, b: FakeBroker) -> None:
        cluster_map = ClusterMap(addr(a))
        a.on_request = answering(cluster_map, {"pub": 5 * CHECK_S})
        b.on_request = answering(cluster_map)
        async with AsyncClient.connect(f"mq://{addr(a)},{addr(b)}", owner_check_s=CHECK_S) as client:
            await client.publish("orders", b"slow")
            a.on_request = answering(cluster_map)
            await client.publish("orders", b"prompt")
        assert len(sent(b, "cluster")) >= 2 and not sent(b, "pub")  # looked, and stayed
        assert len({s.conn for s in a.seen if s.op == "pub"}) == 1  # on the link it had

    run(scenario)


def test_a_get_may_take_its_wait_s_before_the_map_is_looked_at() -> None:
    async def scenario(a: FakeBroker, b: FakeBroker) -> None:
        cluster_map = ClusterMap(addr(a))
        a.on_request, b.on_request = answering(cluster_map), answering(cluster_map)
        a.get_delay_s = 1.0  # an empty get's answer comes after its wait_s: here 1 s
        async with AsyncClient.connect(f"mq://{addr(a)},{addr(b)}", owner_check_s=0.5) as client:
            assert await client.get("orders", wait_s=1.0) == []
        assert not b.seen  # long-polling is not stalling: no map was read from b

    run(scenario)


def test_a_stalled_request_not_safe_to_send_again_raises_outcome_unknown() -> None:
    async def scenario(a: FakeBroker, b: FakeBroker) -> None:
        cluster_map = ClusterMap(addr(a))
        a.on_request = answering(cluster_map, {"purge": PAUSED_S})
        b.on_request = answering(cluster_map)
        async with AsyncClient.connect(f"mq://{addr(a)},{addr(b)}", owner_check_s=CHECK_S) as client:
            purging = asyncio.create_task(client.purge("orders"))
            await asyncio.sleep(CHECK_S / 2)
            cluster_map.move_to(addr(b))
            with pytest.raises(OutcomeUnknown, match="look at the queue") as caught:
                async with asyncio.timeout(5):
                    await purging
            assert not caught.value.safe_to_retry
        assert sent(a, "purge") and not sent(b, "purge")

    run(scenario)


def test_the_blocking_client_leaves_a_stalled_broker_that_lost_its_slot_too() -> None:
    a, b = ThreadedFakeBroker(), ThreadedFakeBroker()
    with a.running() as at_a, b.running() as at_b:
        cluster_map = ClusterMap(addr(at_a))
        at_a.on_request = answering(cluster_map, {"pub": PAUSED_S})
        at_b.on_request = answering(cluster_map)
        moving = threading.Timer(3 * CHECK_S, cluster_map.move_to, (addr(at_b),))
        with Client.connect(f"mq://{addr(at_a)},{addr(at_b)}", timeout_s=10, owner_check_s=CHECK_S) as mq:
            moving.start()
            try:
                mq.publish("orders", b"x")
            finally:
                moving.cancel()
            assert sent(at_b, "cluster") and sent(at_b, "pub")
        (first,), (resent,) = sent(at_a, "pub"), sent(at_b, "pub")
        assert first["dedup_id"] == resent["dedup_id"]
        # It waited while the map still named a: b's first map reads came before the move.
        assert min(s.at_s for s in at_b.seen if s.op == "pub") - at_a.seen[-1].at_s >= 2 * CHECK_S
