"""`consume()` as a job runner against a real broker process: a failing job is nacked with its
error and retried with growing delays, one log line a failure; a long job keeps its lease."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from mq_client import AsyncClient, Message, Retry, consume

from tests.harness import BrokerProcess


def test_a_failing_job_is_retried_later_and_later_and_its_error_is_kept(
        broker: BrokerProcess, caplog: pytest.LogCaptureFixture) -> None:
    tries: list[float] = []

    async def handler(msg: Message) -> None:
        tries.append(time.monotonic())
        raise ValueError(f"bad input {msg.body.decode()}")

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.declare("jobs", max_deliveries=3)
            await mq.publish("jobs", b"7")
            retry = Retry(first_s=0.2, cap_s=10, jitter=0)
            assert await consume(mq, "jobs", handler, wait_s=2, max_messages=3, retry=retry) == 3
            (dead,) = await mq.peek("jobs.dlq")
            assert (dead.deliveries, dead.last_error) == (3, "ValueError: bad input 7")
            assert (await mq.stats("jobs"))["queues"]["jobs"]["dead_lettered"] == 1

    with caplog.at_level(logging.DEBUG, logger="mq_client.consumer"):
        asyncio.run(scenario())
    # Delays of 0.2 s, then 0.4 s, held by the broker (nack's delay_s), not slept by the client.
    assert tries[1] - tries[0] >= 0.2 and tries[2] - tries[1] >= 0.4
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 3 and all(r.exc_info is None for r in failures)  # one line each
    assert "ValueError: bad input 7" in failures[0].getMessage()
    assert "delivered again in 0.2 s" in failures[0].getMessage()


def test_a_long_job_keeps_its_lease_while_it_runs(broker: BrokerProcess) -> None:
    started = asyncio.Event()

    async def handler(msg: Message) -> None:
        started.set()
        await asyncio.sleep(1.0)  # more than three leases of 0.3 s

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq, AsyncClient.connect(broker.url) as other:
            await mq.publish("jobs", b"long")
            running = asyncio.create_task(consume(mq, "jobs", handler, lease_s=0.3, max_messages=1))
            await asyncio.wait_for(started.wait(), 10)
            # Meanwhile the message is never ready for anyone else.
            assert await other.get("jobs", wait_s=0.8) == []
            assert await running == 1
            stats = (await other.stats("jobs"))["queues"]["jobs"]
            assert (stats["acked"], stats["expired"], stats["ready"]) == (1, 0, 0)

    asyncio.run(scenario())
