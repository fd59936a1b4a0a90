"""The SDK's consumer sessions, heartbeats, groups and reconnects against a real broker process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from mq_client import AsyncClient, Client, Message, consume
from mq_client.errors import NameTaken, NoSession

from tests.harness import BinarySession, BrokerProcess, free_port, wait_until_async


def _members(stats: dict[str, Any], queue: str) -> dict[str, Any]:
    group = stats["queues"].get(queue, {}).get("group")
    return {} if group is None else dict(group["members"])


def _abort(mq: AsyncClient) -> None:
    """Reset the client's connection under it, as a network failure would; the session stays."""
    mq._link._conn.abort()


async def _disconnected(mq: AsyncClient) -> bool:
    """Whether the client has seen its connection end (a reconnecting client then redials)."""
    return mq._link._conn.closed


def test_hello_returns_a_token_and_the_terms(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b:
            session = await a.hello("oven-1", heartbeat_s=0.2)
            assert len(session.token) >= 16 and session.consumer == "oven-1"
            assert (session.heartbeat_s, session.grace_s, session.resumed) == (0.2, 3.0, False)
            assert session.dead_after_s == pytest.approx(0.6)  # heartbeat_s x 3 misses
            assert a.session == session
            default = await b.hello("oven-2")
            assert (default.heartbeat_s, default.dead_after_s) == (1.0, 3.0)
            assert default.token != session.token
            assert (await a.stats())["server"]["sessions"] == 2
    asyncio.run(scenario())


def test_heartbeats_keep_an_idle_session_alive(broker: BrokerProcess) -> None:
    silent = BinarySession(broker.port)  # says hello and joins, then never says anything again
    assert silent.call("hello", consumer="silent", heartbeat_s=0.2)["ok"]
    assert silent.call("join", queue="ovens", group="bakers")["ok"]

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq, \
                AsyncClient.connect(broker.url) as observer:
            await mq.hello("chatty", heartbeat_s=0.2)
            await mq.join("ovens", "bakers")
            assert set(_members(await observer.stats("ovens"), "ovens")) == {"silent", "chatty"}
            await asyncio.sleep(1.5)  # the client says nothing itself: only its heartbeats go out
            stats = await observer.stats("ovens")
            # The silent one missed its heartbeats (dead after 0.6 s); ours is still a member.
            assert set(_members(stats, "ovens")) == {"chatty"}
            assert stats["server"]["sessions"] == 1
            assert _members(stats, "ovens")["chatty"]["last_heartbeat_s_ago"] < 0.2
            await mq.ping()
    asyncio.run(scenario())
    silent.close()


def test_blocking_client_heartbeats_while_its_thread_is_busy(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq, Client.connect(broker.url) as observer:
        mq.hello("script", heartbeat_s=0.2)
        mq.join("ovens", "bakers", prefetch=2)
        mq.publish("ovens", b"calzone")
        (msg,) = mq.get("ovens")
        time.sleep(1.5)  # a handler that blocks the calling thread
        stats = observer.stats("ovens")
        assert set(_members(stats, "ovens")) == {"script"}
        assert stats["server"]["sessions"] == 1
        assert stats["queues"]["ovens"]["leased"] == 1
        mq.ack(msg)
        assert observer.stats("ovens")["queues"]["ovens"]["acked"] == 1


def test_join_and_leave(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b:
            await a.hello("a")
            await b.hello("b")
            assert await a.join("ovens", "bakers", prefetch=5) == {
                "queue": "ovens", "group": "bakers", "consumer": "a", "prefetch": 5, "members": 1}
            assert (await b.join("ovens", "bakers"))["members"] == 2
            members = _members(await a.stats("ovens"), "ovens")
            assert (members["a"]["prefetch"], members["b"]["prefetch"]) == (5, 100)
            await a.leave("ovens")
            assert set(_members(await a.stats("ovens"), "ovens")) == {"b"}
            await a.leave("ovens")  # not a member any more: nothing happens
    asyncio.run(scenario())


def test_a_key_goes_only_to_its_owner(broker: BrokerProcess) -> None:
    keys = [f"table-{i}" for i in range(20)]

    async def drain(mq: AsyncClient, total: list[int]) -> set[str]:
        got: set[str] = set()
        while sum(total) < 60:
            msgs = await mq.get("orders", wait_s=0.2, max=100)
            for msg in msgs:
                assert msg.key is not None
                got.add(msg.key)
                await mq.ack(msg)
            total.append(len(msgs))
        return got

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b, \
                AsyncClient.connect(broker.url) as producer:
            for mq, name in ((a, "cook-a"), (b, "cook-b")):
                await mq.hello(name)
                await mq.join("orders", "kitchen")
            for round_ in range(3):
                for key in keys:
                    await producer.publish("orders", f"{key} #{round_}", key=key)
            total: list[int] = []
            both = asyncio.gather(drain(a, total), drain(b, total))
            got_a, got_b = await asyncio.wait_for(both, 8)
            assert got_a and got_b
            assert not got_a & got_b  # each only ever receives keys the other never receives
            assert got_a | got_b == set(keys)
            assert (await producer.stats("orders"))["queues"]["orders"]["acked"] == 60
    asyncio.run(scenario())


def test_name_taken_and_no_session(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as a, AsyncClient.connect(broker.url) as b, \
                AsyncClient.connect(broker.url) as anonymous:
            await a.hello("twin")
            await a.join("ovens", "bakers")
            await b.hello("twin")  # a second session under the same name
            with pytest.raises(NameTaken):
                await b.join("ovens", "bakers")
            with pytest.raises(NoSession):
                await anonymous.join("ovens", "bakers")
            with pytest.raises(NoSession):
                await anonymous.leave("ovens")
            assert set(_members(await anonymous.stats("ovens"), "ovens")) == {"twin"}
    asyncio.run(scenario())


def test_a_plain_handler_that_blocks_keeps_its_session(broker: BrokerProcess) -> None:
    def handler(msg: Message) -> None:
        time.sleep(1.5)  # longer than dead_after_s: only the heartbeats keep the session alive

    async def scenario() -> None:
        async with AsyncClient.connect(broker.url) as mq:
            await mq.hello("slow-cook", heartbeat_s=0.3)
            await mq.join("ovens", "bakers")
            await mq.publish("ovens", b"lasagna")
            assert await consume(mq, "ovens", handler, wait_s=0.5, max_messages=1) == 1
            stats = (await mq.stats("ovens"))["queues"]["ovens"]
            assert (stats["acked"], stats["released"], stats["ready"]) == (1, 0, 0)
    asyncio.run(scenario())


def test_reconnect_resumes_the_session_and_keeps_its_leases(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(broker.url, reconnect=True) as mq:
            first = await mq.hello("roamer", heartbeat_s=0.2)
            await mq.join("ovens", "bakers", prefetch=3)
            await mq.publish("ovens", b"focaccia")
            msg = await mq.lease("ovens")
            assert msg is not None
            _abort(mq)
            await asyncio.wait_for(mq.ping(), 5)  # waits for the reconnect
            assert mq.reconnects == 1
            assert mq.session is not None
            assert (mq.session.token, mq.session.resumed) == (first.token, True)
            assert mq.session.heartbeat_s == 0.2  # the same terms after the resume
            await mq.ack(msg)  # the lease survived with the session
            stats = await mq.stats("ovens")
            assert stats["queues"]["ovens"]["acked"] == 1
            assert _members(stats, "ovens")["roamer"]["prefetch"] == 3
            assert stats["server"]["sessions"] == 1
    asyncio.run(scenario())


def test_after_a_broker_restart_the_client_joins_its_group_again(tmp_path: Path) -> None:
    port = free_port()
    first = BrokerProcess(tmp_path / "mq.db", "--port", str(port)).start()
    second: BrokerProcess | None = None
    try:
        assert first.port == port

        async def scenario() -> None:
            nonlocal second
            async with AsyncClient.connect(first.url, reconnect=True, reconnect_timeout_s=8) as mq:
                before = await mq.hello("survivor", heartbeat_s=0.5)
                await mq.join("ovens", "bakers", prefetch=5)
                first.kill()
                await wait_until_async(lambda: _disconnected(mq), "the client saw the broker go")
                second = BrokerProcess(tmp_path / "mq.db", "--port", str(port)).start()
                stats = await asyncio.wait_for(mq.stats("ovens"), 8)
                assert mq.reconnects == 1
                assert mq.session is not None and not mq.session.resumed
                assert mq.session.token != before.token
                member = _members(stats, "ovens")["survivor"]
                assert member["prefetch"] == 5
                assert stats["queues"]["ovens"]["group"]["group"] == "bakers"
        asyncio.run(scenario())
    finally:
        first.kill()
        if second is not None:
            second.kill()
