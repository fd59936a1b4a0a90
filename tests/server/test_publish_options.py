"""What a publisher can ask of a message, against a real broker: priority (higher first, FIFO
within a level), a delay or a time not before which it is hidden, a TTL after which it is never
delivered, and a dedup id that answers a retry with the first id (protocol.md 2.3), through
text mode as a telnet user types it and through the SDK."""

from __future__ import annotations

from mq_client import AsyncClient, PublishResult

from tests.harness import BrokerProcess, bodies, run_with_client


def test_priority_higher_first_fifo_within_a_level(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        plan = [(b"low-1", 0), (b"mid-1", 5), (b"top", 9), (b"mid-2", 5), (b"low-2", None)]
        for body, priority in plan:
            await mq.publish("kitchen", body, priority=priority)
        await mq.publish_many("kitchen", [b"vip-1", b"vip-2"], priority=8)
        msgs = await mq.get("kitchen", max=10)
        assert bodies(msgs) == [b"top", b"vip-1", b"vip-2", b"mid-1", b"mid-2", b"low-1", b"low-2"]
        assert [m.priority for m in msgs] == [9, 8, 8, 5, 5, 0, 0]

    run_with_client(broker.url, scenario)


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

    run_with_client(broker.url, scenario)
