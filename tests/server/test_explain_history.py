"""EXPLAIN (why a message is or is not being delivered) and HISTORY (its life from the log)
against a real broker, through the SDK."""

from __future__ import annotations

import asyncio
import time

from mq_client import AsyncClient

from tests.harness import BrokerProcess, run_with_client


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

    run_with_client(broker.url, scenario)


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

    run_with_client(broker.url, scenario)


def test_history_of_an_acked_message_ends_with_acked(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        msg_id = await mq.publish("log", b"x")
        (msg,) = await mq.get("log")
        await mq.ack(msg)
        for _ in range(10):  # the broker compacts when idle: the events must outlive that
            events = await mq.history(msg_id)
            assert [e["event"] for e in events] == ["published", "leased", "acked"]
            await asyncio.sleep(0.1)

    run_with_client(broker.url, scenario)
