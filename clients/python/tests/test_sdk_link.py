"""AsyncClient sessions, heartbeats and reconnects, against the in-process fake broker."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fake_broker import FakeBroker, max_gap_s, message

from mq_client import AsyncClient, Message, Session, consume
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.connection import Connection
from mq_client.errors import ConnectionLost, NameTaken
from mq_client.link import Link
from mq_client.url import parse_url

Scenario = Callable[[FakeBroker], Awaitable[None]]


def run(scenario: Scenario) -> None:
    """Run `scenario` against a fresh fake broker; no task may outlive it (clients are closed)."""

    async def main() -> None:
        broker = await FakeBroker().start()
        try:
            await scenario(broker)
        finally:
            await broker.stop()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


async def connect(broker: FakeBroker, *, reconnect: bool = True, reconnect_timeout_s: float = 5.0) -> AsyncClient:
    """A client that redials after 10 ms, not after the real jittered backoff."""
    dial = functools.partial(Connection.open, parse_url(broker.url), connect_timeout_s=1.0,
                             max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)
    link = Link(await dial(), dial=dial if reconnect else None, reconnect_timeout_s=reconnect_timeout_s,
                backoff=lambda: itertools.repeat(0.01))
    return AsyncClient(link)


async def cut(broker: FakeBroker) -> None:
    """Reset every connection and give the client a moment to notice: a call made before it has
    would be in flight on the dead connection, and fail."""
    broker.drop()
    await asyncio.sleep(0.05)


def requests(broker: FakeBroker, op: str, conn: int | None = None) -> list[dict[str, Any]]:
    return [s.request for s in broker.seen if s.op == op and (conn is None or s.conn == conn)]


def test_hello_returns_the_session() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            assert mq.session is None
            session = await mq.hello("w1", heartbeat_s=0.5)
            assert session == Session("t1", "w1", 0.5, 1.5, 3.0, False)
            assert mq.session == session
            again = await mq.hello("w1", heartbeat_s=0.25)  # same name: the same session, new terms
            assert (again.token, again.heartbeat_s, again.resumed) == ("t1", 0.25, True)
        hellos = requests(broker, "hello")
        assert [h.get("session") for h in hellos] == [None, "t1"]
        assert hellos[0] == {"op": "hello", "rid": 1, "consumer": "w1", "heartbeat_s": 0.5}

    run(scenario)


def test_idle_client_keeps_its_session_alive() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await mq.hello("w1", heartbeat_s=0.1)
            start = time.monotonic()
            await asyncio.sleep(0.6)
            end = time.monotonic()
        assert broker.ops().count("heartbeat") >= 5
        assert max_gap_s(broker.seen, start, end) < 0.1  # the broker heard from it every heartbeat_s

    run(scenario)


def test_busy_client_sends_no_heartbeats() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await mq.hello("w1", heartbeat_s=0.2)
            for _ in range(25):  # a request every 20 ms: every one is a sign of life already
                await mq.ping()
                await asyncio.sleep(0.02)
        assert "heartbeat" not in broker.ops()

    run(scenario)


def test_no_heartbeats_without_a_session() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await asyncio.sleep(0.3)
            await mq.heartbeat()  # the explicit one is sent
        assert broker.ops() == ["heartbeat"]  # and no goodbye without a session

    run(scenario)


def test_close_says_goodbye_and_stops_heartbeats() -> None:
    async def scenario(broker: FakeBroker) -> None:
        mq = await connect(broker)
        await mq.hello("w1", heartbeat_s=0.1)
        await asyncio.sleep(0.15)
        await mq.close()
        assert broker.ops()[-1] == "quit"
        seen = len(broker.seen)
        await asyncio.sleep(0.3)
        assert len(broker.seen) == seen
        assert mq.closed and not mq.will_reconnect
        with pytest.raises(ConnectionLost):
            await mq.ping()
        await mq.close()  # twice is fine

    run(scenario)


def test_refused_heartbeat_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["op"] == "heartbeat":
            return {"ok": False, "code": "INTERNAL", "message": "oops", "fatal": False}
        return None

    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = refuse
        async with await connect(broker) as mq:
            await mq.hello("w1", heartbeat_s=0.1)
            with caplog.at_level(logging.WARNING, logger="mq_client.link"):
                await asyncio.sleep(0.3)
            await mq.ping()
        assert "heartbeat refused" in caplog.text
        assert broker.ops().count("heartbeat") >= 3  # it went on beating

    run(scenario)


def test_a_plain_handler_in_a_thread_does_not_stop_heartbeats() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.ready = [message(1)]
        broker.get_delay_s = 0.05
        window: list[float] = []

        def handler(msg: Message) -> None:  # blocks its thread, not the loop
            window.append(time.monotonic())
            time.sleep(0.6)
            window.append(time.monotonic())

        async with await connect(broker) as mq:
            await mq.hello("w1", heartbeat_s=0.1)
            assert await consume(mq, "jobs", handler, wait_s=0.1, max_messages=1) == 1
        start, end = window
        assert max_gap_s(broker.seen, start, end) < 0.1
        assert [s.op for s in broker.seen if start <= s.at_s <= end].count("heartbeat") >= 5
        assert [a["receipt"] for a in requests(broker, "ack")] == ["1.1"]

    run(scenario)


def test_lost_connection_fails_calls_in_flight_then_resumes_the_session() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.get_delay_s = 5.0
        async with await connect(broker) as mq:
            await mq.hello("w1", heartbeat_s=0.5)
            await mq.join("jobs", "g", prefetch=7)
            waiting = asyncio.create_task(mq.get("jobs", wait_s=5))
            await asyncio.sleep(0.05)
            broker.drop()
            with pytest.raises(ConnectionLost):
                await waiting
            assert mq.will_reconnect and not mq.closed
            await mq.ping()
            assert mq.reconnects == 1
            assert mq.session == Session("t1", "w1", 0.5, 1.5, 3.0, True)
        # Resumed: the broker kept its groups, so nothing is joined again.
        assert broker.ops(conn=2) == ["hello", "ping", "quit"]
        assert requests(broker, "hello", conn=2)[0] == {"op": "hello", "rid": 1, "consumer": "w1",
                                                         "heartbeat_s": 0.5, "session": "t1"}

    run(scenario)


def test_new_session_after_reconnect_joins_the_groups_again() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await mq.hello("w1")
            await mq.join("jobs", "g", prefetch=7)
            await mq.join("mail", "g2")
            await mq.join("tmp", "g3")
            await mq.leave("tmp")
            broker.resume = False  # as after a broker restart: the token is unknown
            await cut(broker)
            await mq.ping()  # waits until the groups are joined again
            assert mq.session is not None and (mq.session.token, mq.session.resumed) == ("t2", False)
        assert broker.ops(conn=2) == ["hello", "join", "join", "ping", "quit"]
        joins = [(j["queue"], j["group"], j.get("prefetch")) for j in requests(broker, "join", conn=2)]
        assert joins == [("jobs", "g", 7), ("mail", "g2", None)]

    run(scenario)


def test_restore_cut_short_is_finished_on_the_next_connection() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async def cut_second_join(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
            if conn == 2 and request["op"] == "join" and request["queue"] == "mail":
                broker.resume = True  # the new session t2 survives on the broker
                broker.drop()
            return None

        async with await connect(broker) as mq:
            await mq.hello("w1")
            await mq.join("jobs", "g")
            await mq.join("mail", "g2")
            broker.resume = False
            broker.on_request = cut_second_join
            await cut(broker)
            await mq.ping()
            assert mq.reconnects == 1
            assert mq.session is not None and (mq.session.token, mq.session.resumed) == ("t2", True)
        # t2 was resumed, but its joins were not all done: they are all said again.
        assert broker.ops(conn=3) == ["hello", "join", "join", "ping", "quit"]
        assert requests(broker, "hello", conn=3)[0]["session"] == "t2"

    run(scenario)


def test_calls_wait_for_the_reconnect() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await broker.stop()  # connections refused until it starts again
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(mq.ping())
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await broker.start()
            await asyncio.wait_for(waiting, 2)
            assert mq.reconnects == 1

    run(scenario)


def test_calls_give_up_after_reconnect_timeout_s() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker, reconnect_timeout_s=0.3) as mq:
            await broker.stop()
            await asyncio.sleep(0.05)
            start = time.monotonic()
            with pytest.raises(ConnectionLost, match="reconnect_timeout_s"):
                await mq.ping()
            assert 0.25 <= time.monotonic() - start < 1.5
            assert mq.will_reconnect  # it goes on trying: a later call may succeed
            await broker.start()
            await asyncio.wait_for(mq.ping(), 2)

    run(scenario)


def test_close_while_reconnecting_stops_it() -> None:
    async def scenario(broker: FakeBroker) -> None:
        mq = await connect(broker)
        await mq.hello("w1", heartbeat_s=0.1)
        await broker.stop()
        waiting = asyncio.create_task(mq.ping())
        await asyncio.sleep(0.1)
        await asyncio.wait_for(mq.close(), 1)
        with pytest.raises(ConnectionLost, match="closed"):
            await waiting
        await broker.start()
        await asyncio.sleep(0.1)
        assert broker.seen[-1].conn == 1  # nobody dialled in again

    run(scenario)


def test_a_refused_restore_ends_the_client() -> None:
    async def name_taken(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if conn > 1 and request["op"] == "join":
            return {"ok": False, "code": "NAME_TAKEN", "message": "w1 is a live member", "fatal": False}
        return None

    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker) as mq:
            await mq.hello("w1")
            await mq.join("jobs", "g")
            broker.resume = False
            broker.on_request = name_taken
            await cut(broker)
            with pytest.raises(NameTaken):
                await mq.ping()
            assert mq.closed and not mq.will_reconnect
            with pytest.raises(NameTaken):
                await mq.ping()
        assert broker.ops(conn=2) == ["hello", "join"]

    run(scenario)


def test_without_reconnect_a_lost_connection_closes_the_client() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker, reconnect=False) as mq:
            await mq.hello("w1", heartbeat_s=0.1)
            broker.drop()
            await asyncio.sleep(0.2)
            assert mq.closed and not mq.will_reconnect
            with pytest.raises(ConnectionLost):
                await mq.ping()
            assert len({s.conn for s in broker.seen}) == 1

    run(scenario)


def test_public_connect_reconnects_with_real_backoff() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with AsyncClient.connect(broker.url, reconnect=True) as mq:
            await mq.hello("w1")
            await cut(broker)
            start = time.monotonic()
            await asyncio.wait_for(mq.ping(), 2)
            assert time.monotonic() - start <= 0.5  # first delay is at most 0.05 s
            assert mq.reconnects == 1 and mq.session is not None and mq.session.resumed
        async with AsyncClient.connect(broker.url) as plain:
            assert not plain.will_reconnect

    run(scenario)
