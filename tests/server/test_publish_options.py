"""What a publisher can ask of a message, against a real broker: priority (higher first, FIFO
within a level), a delay or a time not before which it is hidden, a TTL after which it is never
delivered, and a dedup id that answers a retry with the first id (protocol.md 2.3), through
text mode as a telnet user types it and through the SDK."""

from __future__ import annotations

import time

from mq_client import AsyncClient, Client, PublishResult

from tests.harness import BrokerProcess, TextSession, bodies, run_with_client


def test_priority_delay_ttl_and_dedup(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q priority=1 low") == "+OK 1"
    assert t.ask("PUB q priority=7 high") == "+OK 2"
    assert t.ask("PUB q delay_s=1.5 later") == "+OK 3"
    assert t.ask("PUB q ttl_s=0.05 fleeting") == "+OK 4"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5 duplicate"
    assert t.ask("PUB q -- priority=3 is the body") == "+OK 6"
    time.sleep(0.1)
    got = [t.ask("GET q").split(" ", 4)[4] for _ in range(4)]
    assert got == ["high", "low", "once", "priority=3 is the body"]  # ttl'd one never shows
    assert t.ask("GET q") == "+EMPTY"
    started = time.monotonic()
    assert t.ask("GET q 30 5") == "MSG 3.1 q 1 later"  # delivered once its delay is over
    assert time.monotonic() - started < 2.0
    t.send("STATS q")
    header, row = t.reply()[:2]
    stats = dict(zip(header.split(), row.split(), strict=True))
    assert (stats["ttl_expired"], stats["deduplicated"]) == ("1", "1")


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

    run_with_client(broker.url, scenario)


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

    run_with_client(broker.url, scenario)
