"""Batch acks and batched consume, over loopback against the in-process fake broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fake_broker import FakeBroker, ThreadedFakeBroker, message

from mq_client import AsyncClient, Client, Message, consume
from mq_client.errors import ConnectionLost
from mq_client.message import AckFailure, AckResult


def _acks(broker: FakeBroker) -> list[dict[str, Any]]:
    return [s.request for s in broker.seen if s.op == "ack"]


def _run(scenario: Any) -> None:
    async def main() -> None:
        broker = await FakeBroker().start()
        try:
            await scenario(broker)
        finally:
            await broker.stop()

    asyncio.run(main())


def test_async_ack_many_splits_at_10_000() -> None:
    async def scenario(broker: FakeBroker) -> None:
        receipts = [f"{i}.1" for i in range(1, 25_001)]
        broker.lost = {"7.1", "24999.1"}
        async with AsyncClient.connect(broker.url) as client:
            result = await client.ack_many(receipts)
        assert result.acked == 24_998
        assert [f.receipt for f in result.failed] == ["7.1", "24999.1"]
        assert all(f.code == "LEASE_LOST" for f in result.failed)
        acks = _acks(broker)
        assert [len(a["receipts"]) for a in acks] == [10_000, 10_000, 5_000]
        assert [r for a in acks for r in a["receipts"]] == receipts

    _run(scenario)


def test_async_ack_many_takes_messages_and_nothing_sends_nothing() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with AsyncClient.connect(broker.url) as client:
            msgs = [Message.from_wire(message(i)) for i in (1, 2)]
            assert await client.ack_many(msgs) == AckResult(2)
            assert await client.ack_many([]) == AckResult(0)
        assert _acks(broker) == [{"op": "ack", "rid": 1, "receipts": ["1.1", "2.1"]}]

    _run(scenario)


def test_async_ack_many_on_a_lost_connection_raises() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async def vanish(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
            if request["op"] == "ack":
                broker.drop()
            return None

        broker.on_request = vanish
        async with AsyncClient.connect(broker.url) as client:
            with pytest.raises(ConnectionLost):
                await client.ack_many(["1.1", "2.1"])

    _run(scenario)


def test_consume_with_prefetch_acks_each_batch_once() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.ready = [message(i) for i in range(1, 251)]
        seen: list[int] = []

        async def handler(msg: Message) -> None:
            seen.append(msg.msg_id)

        async with AsyncClient.connect(broker.url) as client:
            assert await consume(client, "jobs", handler, prefetch=100, max_messages=250, wait_s=0.1) == 250
        assert seen == list(range(1, 251))
        assert [s.request["max"] for s in broker.seen if s.op == "get"] == [100, 100, 50]
        assert [len(a["receipts"]) for a in _acks(broker)] == [100, 100, 50]

    _run(scenario)


@pytest.fixture
def fake() -> Iterator[ThreadedFakeBroker]:
    threaded = ThreadedFakeBroker()
    with threaded.running():
        yield threaded


def test_blocking_ack_many(fake: ThreadedFakeBroker) -> None:
    fake.broker.lost = {"3.1"}
    with Client.connect(fake.broker.url) as client:
        result = client.ack_many([*(f"{i}.1" for i in range(1, 10_003)), Message.from_wire(message(10_003))])
        assert result.acked == 10_002
        assert result.failed == (AckFailure("3.1", "LEASE_LOST", "lease 3.1 is no longer held"),)
        assert client.ack_many([]) == AckResult(0)
    assert [len(a["receipts"]) for a in _acks(fake.broker)] == [10_000, 3]
