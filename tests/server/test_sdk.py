"""The Python SDK (async and blocking) against a real broker process over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mq_client import AsyncClient, Client, consume
from mq_client.errors import BadRequest, LeaseLost, NotYourLease

from tests.harness import BrokerProcess, wait_until_async


def test_async_publish_lease_ack(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.ping()
            first = await mq.publish("orders", b"margherita", key="store-7")
            ids = await mq.publish_many("orders", [f"order {i}".encode() for i in range(2500)],
                                        batch_size=1000)
            assert ids == list(range(first + 1, first + 2501))
            msg = await mq.lease("orders", lease_s=30)
            assert msg is not None
            assert (msg.msg_id, msg.body, msg.key, msg.deliveries) == (first, b"margherita",
                                                                        "store-7", 1)
            assert msg.receipt == f"{first}.1"
            await mq.ack(msg)
            with pytest.raises(LeaseLost):
                await mq.ack(msg)
            batch = await mq.get("orders", max=1000)
            assert [m.msg_id for m in batch] == ids[:1000]
            stats = await mq.stats("orders")
            assert stats["queues"]["orders"]["leased"] == 1000
            assert stats["queues"]["orders"]["ready"] == 1500
            assert stats["server"]["sync"] == "full"
    asyncio.run(scenario())


def test_async_nack_touch_and_errors(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b:
            await a.publish("jobs", b"1080p")
            msg = await a.lease("jobs")
            assert msg is not None
            with pytest.raises(NotYourLease):
                await b.ack(msg)
            assert await a.touch(msg, lease_s=60) == 60
            await a.nack(msg)
            again = await b.lease("jobs")
            assert again is not None and again.deliveries == 2
            with pytest.raises(LeaseLost):
                await a.ack(msg)
            with pytest.raises(BadRequest):
                await a.get("bad/queue")
            assert await b.queues() == ["jobs"]
    asyncio.run(scenario())


def test_long_poll_wakes_on_publish(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as consumer, \
                AsyncClient.connect(broker.url) as producer:
            waiting = asyncio.create_task(consumer.lease("later", wait_s=10))

            async def parked() -> bool:
                return bool((await producer.stats())["server"]["waiting_gets"] == 1)

            await wait_until_async(parked, "the broker holds the waiting GET")
            assert not waiting.done()
            await consumer.ping()  # the same connection keeps working while its GET waits
            await producer.publish("later", b"now")
            msg = await asyncio.wait_for(waiting, 5)
            assert msg is not None and msg.body == b"now"
    asyncio.run(scenario())


def test_consume_helper_acks_success_and_nacks_failure(broker: BrokerProcess) -> None:
    seen: list[bytes] = []

    async def handler(msg: object) -> None:
        body = msg.body  # type: ignore[attr-defined]
        seen.append(body)
        if body == b"bad" and seen.count(b"bad") == 1:
            raise RuntimeError("first try fails")

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.publish_many("work", [b"a", b"bad", b"c"])
            handled = await consume(mq, "work", handler, wait_s=0.5, max_messages=4)
            assert handled == 4
            stats = (await mq.stats("work"))["queues"]["work"]
            assert stats["acked"] == 3 and stats["ready"] == 0 and stats["leased"] == 0
    asyncio.run(scenario())
    assert sorted(seen) == [b"a", b"bad", b"bad", b"c"]


def test_blocking_client(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        ids = mq.publish_many("sync", [b"x"] * 10)
        assert len(ids) == 10
        msgs = mq.get("sync", max=10)
        assert [m.msg_id for m in msgs] == ids
        for m in msgs:
            mq.ack(m)
        assert mq.stats("sync")["queues"]["sync"]["acked"] == 10
        assert mq.get("sync", wait_s=0.2) == []


def test_get_reply_is_capped_by_frame_size(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db", "--max-frame-bytes", "65536") as broker, \
            Client.connect(broker.url, max_frame_bytes=65536) as mq:
        mq.publish_many("big", [b"z" * 20_000] * 10, batch_size=2)
        first = mq.get("big", max=10)
        assert 1 < len(first) < 10
        assert sum(len(m.body) for m in first) <= 65536
