"""The queue features through the Python SDK against a real broker process (protocol.md 2.3,
2.4, 4.3, 4.4): priorities, delays, TTL, deduplication, dead letters, fan-out, administration,
EXPLAIN, HISTORY, push subscriptions and MONITOR."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from mq_client import AsyncClient, Client, Message, PublishResult
from mq_client.errors import LeaseLost, NotFound

from tests.harness import BrokerProcess

Scenario = Callable[[AsyncClient], Awaitable[None]]


def run(broker: BrokerProcess, scenario: Scenario) -> None:
    async def main() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await asyncio.wait_for(scenario(mq), 5)

    asyncio.run(main())


def bodies(msgs: list[Message]) -> list[bytes]:
    return [m.body for m in msgs]


def test_priority_higher_first_fifo_within_a_level(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        plan = [(b"low-1", 0), (b"mid-1", 5), (b"top", 9), (b"mid-2", 5), (b"low-2", None)]
        for body, priority in plan:
            await mq.publish("kitchen", body, priority=priority)
        await mq.publish_many("kitchen", [b"vip-1", b"vip-2"], priority=8)
        msgs = await mq.get("kitchen", max=10)
        assert bodies(msgs) == [b"top", b"vip-1", b"vip-2", b"mid-1", b"mid-2", b"low-1", b"low-2"]
        assert [m.priority for m in msgs] == [9, 8, 8, 5, 5, 0, 0]

    run(broker, scenario)


def test_delay_and_not_before_hide_a_message_until_its_time(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        start = time.monotonic()
        await mq.publish("oven", b"delayed", delay_s=0.3)
        await mq.publish("oven", b"scheduled", not_before=time.time() + 0.3)
        assert await mq.get("oven", max=2) == []
        assert (await mq.stats("oven"))["queues"]["oven"]["delayed"] == 2
        first = await mq.get("oven", wait_s=3, max=2)
        waited_s = time.monotonic() - start
        rest = [] if len(first) == 2 else await mq.get("oven", wait_s=1)
        assert sorted(bodies(first + rest)) == [b"delayed", b"scheduled"]
        assert 0.25 <= waited_s < 1.5

    run(broker, scenario)


def test_ttl_expired_message_is_never_delivered(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        mq.publish("fresh", b"stale soon", ttl_s=0.2)
        mq.publish("fresh", b"keeps", ttl_s=60)
        time.sleep(0.3)
        assert bodies(mq.get("fresh", max=10)) == [b"keeps"]
        stats = mq.stats("fresh")["queues"]["fresh"]
        assert stats["ttl_expired"] == 1 and stats["dead_lettered"] == 0


def test_dedup_answers_a_retry_with_the_first_id(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        await mq.declare("payments", dedup_window_s=60)
        first = await mq.publish_dedup("payments", b"pay 17", "order-17")
        assert first == PublishResult(first.msg_id, False)
        again = await mq.publish_dedup("payments", b"pay 17 again", "order-17")
        assert again == PublishResult(first.msg_id, True)
        assert await mq.publish("payments", b"retry", dedup_id="order-17") == first.msg_id
        other = await mq.publish("payments", b"pay 18", dedup_id="order-18")
        assert other != first.msg_id
        assert bodies(await mq.get("payments", max=10)) == [b"pay 17", b"pay 18"]
        stats = (await mq.stats("payments"))["queues"]["payments"]
        assert (stats["published"], stats["deduplicated"]) == (2, 2)

    run(broker, scenario)


def test_dead_letter_after_max_deliveries_then_peek_and_redrive(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        settings = await mq.declare("render", max_deliveries=2, lease_s=10)
        assert (settings["max_deliveries"], settings["dead_letter"]) == (2, "render.dlq")
        msg_id = await mq.publish("render", b"frame 42", key="film-1")
        for attempt in (1, 2):
            (msg,) = await mq.get("render")
            assert msg.deliveries == attempt
            await mq.nack(msg, error=f"GPU error #{attempt}")
        assert await mq.get("render") == []
        (dead,) = await mq.peek("render.dlq")
        assert (dead.msg_id, dead.body, dead.key) == (msg_id, b"frame 42", "film-1")
        assert dead.deliveries == 2
        assert dead.dead and dead.dead_from == "render" and dead.last_error == "GPU error #2"
        assert dead.dead_reason is not None and "max_deliveries=2" in dead.dead_reason
        assert dead.dead_at is not None and dead.dead_at <= time.time()
        assert await mq.peek("render.dlq") == [dead]  # peek leases nothing
        assert await mq.redrive("render.dlq") == 1
        assert await mq.peek("render.dlq") == []
        (back,) = await mq.get("render")
        assert back.msg_id == msg_id
        await mq.nack(back)  # counts afresh towards max_deliveries: one nack is not enough
        assert [m.msg_id for m in await mq.get("render")] == [msg_id]

    run(broker, scenario)


def test_fanout_to_three_bound_queues_acked_independently(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        queues = ["v-144p", "v-720p", "v-captions"]
        for q in queues:
            assert await mq.bind("uploads", q) is True
        assert await mq.bind("uploads", "v-720p") is False
        assert await mq.bindings() == {"uploads": sorted(queues)}
        ids = await mq.fanout("uploads", b"cat.mp4", key="user-9", priority=3)
        assert sorted(ids) == sorted(queues) and len(set(ids.values())) == 3
        copies = {q: (await mq.get(q))[0] for q in queues}
        assert {q: (m.msg_id, m.body, m.key, m.priority) for q, m in copies.items()} == {
            q: (ids[q], b"cat.mp4", "user-9", 3) for q in queues}
        await mq.ack(copies["v-144p"])
        await mq.nack(copies["v-720p"])
        stats = (await mq.stats())["queues"]
        assert [(stats[q]["acked"], stats[q]["ready"], stats[q]["leased"]) for q in queues] == [
            (1, 0, 0), (0, 1, 0), (0, 0, 1)]
        assert await mq.unbind("uploads", "v-captions") is True
        assert await mq.unbind("uploads", "v-captions") is False
        assert sorted(await mq.fanout("uploads", b"dog.mp4")) == ["v-144p", "v-720p"]
        assert await mq.fanout("nobody-listens", b"x") == {}

    run(broker, scenario)


def test_purge_delete_and_not_found(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        mq.publish_many("scratch", [b"a", b"b", b"c"])
        (leased,) = mq.get("scratch")
        assert mq.purge("scratch") == 3
        with pytest.raises(LeaseLost):
            mq.ack(leased)
        mq.publish_many("scratch", [b"d", b"e"])
        assert mq.bind("t", "scratch") and mq.bindings() == {"t": ["scratch"]}
        assert mq.delete("scratch") == 2
        assert "scratch" not in mq.queues()
        assert mq.bindings() == {}  # its bindings went with it
        with pytest.raises(NotFound):
            mq.delete("scratch")


def test_explain_a_leased_message_names_its_holder(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        async with AsyncClient.connect(broker.url) as worker:
            await worker.hello("oven-7", heartbeat_s=1)
            msg_id = await mq.publish("pizzas", b"margherita")
            assert (await mq.explain(msg_id))["state"] == "ready"
            (msg,) = await worker.get("pizzas", lease_s=20)
            why = await mq.explain(msg_id)
            assert why["state"] == "leased" and "oven-7" in why["holder"]
            assert why["holder"] in why["why"] and "heartbeat" in why["why"]
            assert why["lease_deadline"] > time.time() + 15
            await worker.ack(msg)
        assert (await mq.explain(msg_id))["state"] == "gone"

    run(broker, scenario)


def test_history_lists_published_leased_nacked(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        msg_id = await mq.publish("log", b"x", key="k", priority=4)
        (msg,) = await mq.get("log")
        await mq.nack(msg, error="try again")
        await mq.get("log")
        events = await mq.history(msg_id)
        assert [e["event"] for e in events] == ["published", "leased", "nacked", "leased"]
        assert (events[0]["queue"], events[0]["key"], events[0]["priority"]) == ("log", "k", 4)
        assert [e["delivery"] for e in events if e["event"] == "leased"] == [1, 2]
        assert events[2]["error"] == "try again"
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    run(broker, scenario)


def test_history_of_an_acked_message_ends_with_acked(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        msg_id = await mq.publish("log", b"x")
        (msg,) = await mq.get("log")
        await mq.ack(msg)
        for _ in range(10):  # the broker compacts when idle: the events must outlive that
            events = await mq.history(msg_id)
            assert [e["event"] for e in events] == ["published", "leased", "acked"]
            await asyncio.sleep(0.1)

    run(broker, scenario)


def test_subscribe_pushes_up_to_prefetch_and_more_after_acks(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        await mq.publish_many("orders", [f"o{i}".encode() for i in range(3)])
        sub = await mq.subscribe("orders", prefetch=2)
        o0, o1 = await anext(sub), await anext(sub)
        assert bodies([o0, o1]) == [b"o0", b"o1"]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await anext(sub)  # prefetch 2: nothing more until an ack
        await mq.publish_many("orders", [b"o3", b"o4"])
        await mq.ack(o0)
        o2 = await anext(sub)
        await mq.ack_many([o1])
        assert bodies([o2, *await sub.batch(10)]) == [b"o2", b"o3"]  # o2 and o3 held: o4 waits
        stats = (await mq.stats("orders"))["queues"]["orders"]
        assert (stats["leased"], stats["ready"]) == (2, 1)
        await mq.ack(o2)
        await mq.ping()  # the push of o4 came with the ack's reply, ahead of this one
        await sub.close()  # unsub; o4 was pushed but never taken: it is given back
        stats = (await mq.stats("orders"))["queues"]["orders"]
        assert (stats["leased"], stats["ready"]) == (1, 1)
        assert bodies(await mq.get("orders")) == [b"o4"]

    run(broker, scenario)


def test_monitor_receives_events_as_they_commit(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        async with AsyncClient.connect(broker.url) as watcher:
            mon = await watcher.monitor("pizzas")
            msg_id = await mq.publish("pizzas", b"diavola", key="store-1")
            await mq.publish("other", b"not watched")
            (msg,) = await mq.get("pizzas")
            await mq.ack(msg)
            events = [await anext(mon) for _ in range(3)]
            assert [(e["queue"], e["msg_id"], e["event"]) for e in events] == [
                ("pizzas", msg_id, "published"), ("pizzas", msg_id, "leased"),
                ("pizzas", msg_id, "acked")]
            assert events[0]["key"] == "store-1" and events[1]["delivery"] == 1
            await mon.close()

    run(broker, scenario)
