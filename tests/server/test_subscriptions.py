"""Push subscriptions (SUB) against a real broker: the broker pushes up to the prefetch and one
more for each ack; UNSUB gives back what was pushed but never taken; text mode and the SDK."""

from __future__ import annotations

import asyncio

import pytest
from mq_client import AsyncClient

from tests.harness import BrokerProcess, TextSession, bodies, run_with_client


def test_sub_pushes_up_to_prefetch_and_more_after_acks(broker: BrokerProcess) -> None:
    worker, producer = TextSession(broker.port), TextSession(broker.port)
    assert worker.ask("SUB orders 2").startswith("+OK subscribed to orders prefetch=2")
    for i in range(4):
        producer.ask(f"PUB orders o{i}")
    assert worker.read_line() == "MSG 1.1 orders 1 o0"
    assert worker.read_line() == "MSG 2.1 orders 1 o1"
    # prefetch 2: no third message until an ack. Had the publishes pushed one, it would be in
    # the stream before the reply to a PING sent after they were all confirmed.
    assert worker.ask("PING") == "+PONG"
    worker.send("ACK 1.1")
    lines = [worker.read_line(), worker.read_line()]
    assert "+OK" in lines and "MSG 3.1 orders 1 o2" in lines


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

    run_with_client(broker.url, scenario)
