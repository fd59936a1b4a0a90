"""Bodies beyond `--max-body-memory-bytes` stay in the log and are read back when delivered: a
backlog far larger than the budget is served whole and in order, by GET, SUB and PEEK, before
and after a restart, and STATS counts what is in memory. Real processes, SQLite and sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mq_client import AsyncClient

from mq.server.config import Config
from tests.harness import BrokerProcess

BUDGET = 2_000  # bytes: 20 of the bodies below
N = 600


def body(i: int) -> bytes:
    return b"%05d" % i + b"." * 95  # 100 bytes, each its own


async def server_stats(mq: AsyncClient) -> dict[str, Any]:
    stats: dict[str, Any] = (await mq.stats())["server"]
    return stats


@pytest.fixture
def budgeted(tmp_path: Path) -> BrokerProcess:
    return BrokerProcess(tmp_path / "mq.db", "--sync", "normal",
                         "--max-body-memory-bytes", str(BUDGET))


def test_a_backlog_larger_than_the_budget_is_served_whole_and_in_order(
        budgeted: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(budgeted.url) as mq:
            await mq.publish_many("jobs", [body(i) for i in range(N)])
            stats = await server_stats(mq)
            assert stats["body_bytes_in_memory"] <= BUDGET
            assert stats["bodies_in_memory"] == BUDGET // 100
            assert stats["bodies_in_log_only"] == N - BUDGET // 100
            got = await mq.get("jobs", max=50)  # stops where the budget did: the rest is read
            assert [m.body for m in got] == [body(i) for i in range(BUDGET // 100)]
            while len(got) < 50:  # from the log, before each reply
                got += await mq.get("jobs", max=50 - len(got))
            assert [m.body for m in got] == [body(i) for i in range(50)]
            await mq.ack_many(got)
            assert [m.body for m in await mq.peek("jobs", 5)] == [body(i) for i in range(50, 55)]
            sub = await mq.subscribe("jobs", prefetch=100)
            seen: list[bytes] = []
            async with asyncio.timeout(30):
                while len(seen) < N - 50:
                    msg = await anext(sub)
                    seen.append(msg.body)
                    await mq.ack(msg)
            assert seen == [body(i) for i in range(50, N)]
            stats = await server_stats(mq)
            assert (stats["bodies_in_memory"], stats["bodies_in_log_only"]) == (0, 0)
    with budgeted:
        asyncio.run(scenario())


def test_a_restarted_broker_reads_only_its_budget_and_serves_the_rest_from_the_log(
        budgeted: BrokerProcess) -> None:
    async def fill() -> None:
        async with AsyncClient.connect(budgeted.url) as mq:
            await mq.publish_many("jobs", [body(i) for i in range(N)])

    async def drain() -> None:
        async with AsyncClient.connect(budgeted.url) as mq:
            stats = await server_stats(mq)
            assert stats["body_bytes_in_memory"] <= BUDGET
            assert stats["bodies_in_memory"] + stats["bodies_in_log_only"] == N
            got: list[bytes] = []
            async with asyncio.timeout(30):
                while len(got) < N:
                    batch = await mq.get("jobs", max=100)
                    got += [m.body for m in batch]
                    await mq.ack_many(batch)
            assert got == [body(i) for i in range(N)]
    with budgeted:
        asyncio.run(fill())
        budgeted.kill()
        budgeted.start()
        asyncio.run(drain())


def test_messages_with_options_keep_their_bodies_and_come_first_by_priority(
        budgeted: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(budgeted.url) as mq:
            await mq.publish_many("jobs", [body(i) for i in range(100)])
            await mq.publish("jobs", b"urgent", priority=5)
            got = await mq.get("jobs", max=100)  # the budget was full: urgent kept its body
            assert [m.body for m in got] == [b"urgent", *(body(i) for i in range(BUDGET // 100))]
    with budgeted:
        asyncio.run(scenario())


def test_a_negative_body_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_body_memory_bytes"):
        Config(max_body_memory_bytes=-1)
