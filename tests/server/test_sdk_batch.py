"""Batch acks (`ack_many`) and batched `consume`, with the SDK against a real broker process."""

from __future__ import annotations

import asyncio

from mq_client import AsyncClient, Client, Message, consume

from tests.harness import BrokerProcess


def test_async_ack_many_across_the_10_000_split(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.publish_many("jobs", [b"x"] * 12_000, batch_size=10_000)
            leased: list[Message] = []
            for _ in range(12):
                leased.extend(await mq.get("jobs", max=1000))
            assert len(leased) == 12_000
            first = leased[0]
            await mq.ack(first)  # acked alone first: the batch sees a receipt no longer held
            result = await mq.ack_many(leased)  # two requests: 10,000 receipts, then 2,000
            assert result.acked == 11_999 and not result.ok
            (failure,) = result.failed
            assert (failure.receipt, failure.code) == (first.receipt, "LEASE_LOST")
            stats = (await mq.stats("jobs"))["queues"]["jobs"]
            assert (stats["acked"], stats["leased"], stats["ready"]) == (12_000, 0, 0)
    asyncio.run(scenario())


def test_ack_many_of_another_holders_leases_acks_nothing(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b:
            await a.publish_many("jobs", [b"1", b"2", b"3"])
            msgs = await a.get("jobs", max=3)
            result = await b.ack_many(msgs)
            assert result.acked == 0
            assert [(f.receipt, f.code) for f in result.failed] == [(m.receipt, "NOT_YOUR_LEASE")
                                                                     for m in msgs]
            assert (await a.ack_many([m.receipt for m in msgs])).ok
            assert (await a.ack_many([])).acked == 0
    asyncio.run(scenario())


def test_blocking_ack_many(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        mq.publish_many("jobs", [b"a", b"b"])
        msgs = mq.get("jobs", max=2)
        result = mq.ack_many([*msgs, "999.1"])
        assert result.acked == 2
        assert [(f.receipt, f.code) for f in result.failed] == [("999.1", "LEASE_LOST")]
        assert mq.stats("jobs")["queues"]["jobs"]["acked"] == 2


def test_consume_with_prefetch_acks_successes_and_nacks_failures(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.publish_many("work", [str(i).encode() for i in range(500)])
            failed_once: list[int] = []

            async def handler(msg: Message) -> None:
                if int(msg.body) % 50 == 0 and msg.deliveries == 1:
                    failed_once.append(msg.msg_id)
                    raise RuntimeError("try again")

            handled = await consume(mq, "work", handler, prefetch=100, wait_s=0.5,
                                    max_messages=510)
            assert handled == 510 and len(failed_once) == 10
            stats = (await mq.stats("work"))["queues"]["work"]
            assert (stats["acked"], stats["leased"], stats["ready"]) == (500, 0, 0)
    asyncio.run(scenario())
