"""Push frames (protocol.md 2.4): subscriptions and monitors of the asyncio client, against the
fake broker; and the blocking client, which never subscribes, ignoring them."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fake_broker import FakeBroker, ThreadedFakeBroker, message

from mq_client import AsyncClient, Client, push
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES
from mq_client.connection import Connection
from mq_client.errors import BadRequest, ConnectionLost, ProtocolError
from mq_client.link import Link
from mq_client.url import parse_url

Scenario = Callable[[FakeBroker], Awaitable[None]]
Hook = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any] | None]]


def run(scenario: Scenario) -> None:
    """Run `scenario` against a fresh fake broker; no task may outlive it."""

    async def main() -> None:
        broker = await FakeBroker().start()
        try:
            await asyncio.wait_for(scenario(broker), 10)
        finally:
            await broker.stop()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


async def connect(broker: FakeBroker, *, reconnect: bool = False) -> AsyncClient:
    dial = functools.partial(Connection.open, parse_url(broker.url), connect_timeout_s=1.0,
                             max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)
    link = Link(await dial(), dial=dial if reconnect else None, reconnect_timeout_s=5.0,
                backoff=lambda: itertools.repeat(0.01))
    return AsyncClient(link)


def msgs_push(queue: str, *ids: int) -> dict[str, Any]:
    return {"push": "msgs", "queue": queue, "msgs": [message(i, queue) for i in ids]}


def pushing_on(op: str, before: list[dict[str, Any]], after: list[dict[str, Any]], broker: FakeBroker) -> Hook:
    """A hook that answers `op` with pushes before its reply and pushes after it."""

    async def hook(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["op"] != op:
            return None
        for frame in before:
            broker.push(conn, frame)
        loop = asyncio.get_running_loop()
        for frame in after:
            loop.call_soon(broker.push, conn, frame)  # written after the reply
        return {"ok": True}

    return hook


def requests(broker: FakeBroker, op: str) -> list[dict[str, Any]]:
    return [s.request for s in broker.seen if s.op == op]


def test_pushes_ahead_of_and_after_the_sub_reply_all_arrive_in_order() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = pushing_on("sub", [msgs_push("jobs", 1, 2)], [msgs_push("jobs", 3)], broker)
        async with await connect(broker) as mq:
            sub = await mq.subscribe("jobs", prefetch=5, lease_s=2.5)
            got = [await anext(sub) for _ in range(3)]
            assert [m.msg_id for m in got] == [1, 2, 3]
            assert got[0].receipt == "1.1" and got[0].priority == 0
        assert requests(broker, "sub") == [{"op": "sub", "rid": 1, "queue": "jobs", "prefetch": 5, "lease_s": 2.5}]

    run(scenario)


def test_a_push_is_never_taken_for_a_reply() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async def hook(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
            if request["op"] == "get":  # pushes land while the get waits for its reply
                broker.push(conn, msgs_push("jobs", 7))
                broker.push(conn, {"push": "event", "at": 1.0, "queue": "jobs", "msg_id": 7, "event": "leased"})
                await asyncio.sleep(0.05)
                return {"ok": True, "msgs": [message(9, "other")]}
            return None

        async with await connect(broker) as mq:
            sub = await mq.subscribe("jobs")
            broker.on_request = hook
            got = await mq.get("other")
            assert [m.msg_id for m in got] == [9]
            assert [m.msg_id for m in await sub.batch(10)] == [7]
            await mq.ping()

    run(scenario)


def test_unknown_pushes_are_ignored_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(broker: FakeBroker) -> None:
        frames = [{"push": "weather", "sky": "blue"}, {"push": "event", "event": "acked", "msg_id": 1}]
        broker.on_request = pushing_on("ping", frames, [], broker)
        async with await connect(broker) as mq:
            with caplog.at_level(logging.DEBUG, logger="mq_client"):
                await mq.ping()
                await mq.ping()
        assert "unknown kind 'weather'" in caplog.text
        assert "no monitor is open" in caplog.text

    run(scenario)


def test_a_malformed_push_ends_the_connection() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = pushing_on("ping", [{"push": "msgs", "queue": "jobs", "msgs": "nope"}], [], broker)
        async with await connect(broker) as mq:
            sub = await mq.subscribe("jobs")
            with pytest.raises(ProtocolError):
                await mq.ping()
            with pytest.raises(ProtocolError):
                await anext(sub)

    run(scenario)


def test_close_unsubscribes_and_gives_back_what_was_not_taken() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = pushing_on("sub", [], [msgs_push("jobs", 1, 2, 3)], broker)
        async with await connect(broker) as mq:
            sub = await mq.subscribe("jobs", prefetch=3)
            (first,) = await sub.batch(1)
            broker.on_request = None
            await mq.ping()  # its reply comes after the pushes: 2 and 3 are buffered now
            await sub.close()
            assert [r["receipt"] for r in requests(broker, "nack")] == ["2.1", "3.1"]
            assert requests(broker, "unsub")[0]["queue"] == "jobs"
            assert broker.ops().index("unsub") < broker.ops().index("nack")
            assert first.msg_id == 1 and sub.closed
            with pytest.raises(StopAsyncIteration):
                await anext(sub)
            assert await sub.batch() == []
            await sub.close()  # twice is fine
            again = await mq.subscribe("jobs")  # the queue is free again
            waiting = asyncio.create_task(anext(again, None))
            await asyncio.sleep(0.01)
            await again.close()
            assert await waiting is None  # a reader waiting in async for is woken

    run(scenario)


def test_one_subscription_per_queue_and_a_failed_sub_leaves_none() -> None:
    async def refuse(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["op"] == "sub" and request["queue"] == "bad":
            return {"ok": False, "code": "BAD_REQUEST", "message": "prefetch out of bounds", "fatal": False}
        return None

    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = refuse
        async with await connect(broker) as mq:
            async with await mq.subscribe("jobs"):
                with pytest.raises(ValueError, match="already has a subscription"):
                    await mq.subscribe("jobs")
            for _ in range(2):
                with pytest.raises(BadRequest):
                    await mq.subscribe("bad")
            async with await mq.monitor():
                with pytest.raises(ValueError, match="already has a monitor"):
                    await mq.monitor("jobs")
            await (await mq.monitor("jobs")).close()
        assert broker.ops().count("unsub") == 1

    run(scenario)


def test_monitor_yields_events_and_drops_the_oldest_when_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push, "MONITOR_BUFFER_EVENTS", 3)
    events = [{"push": "event", "at": float(i), "queue": "jobs", "msg_id": i, "event": "published"}
              for i in range(1, 6)]

    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = pushing_on("monitor", [], events, broker)
        async with await connect(broker) as mq:
            mon = await mq.monitor("jobs")
            broker.on_request = None
            await mq.ping()  # its reply comes after the events
            assert mon.dropped == 2
            got = await mon.batch(10)
            assert [e["msg_id"] for e in got] == [3, 4, 5]
            assert got[0] == {"at": 3.0, "queue": "jobs", "msg_id": 3, "event": "published"}
            await mon.close()
            with pytest.raises(StopAsyncIteration):
                await anext(mon)
        assert requests(broker, "monitor") == [{"op": "monitor", "rid": 1, "queue": "jobs"}]

    run(scenario)


def test_a_lost_connection_ends_the_streams_with_its_error() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.on_request = pushing_on("sub", [], [msgs_push("jobs", 1)], broker)
        async with await connect(broker) as mq:
            sub = await mq.subscribe("jobs")
            mon = await mq.monitor()
            assert (await anext(sub)).msg_id == 1
            broker.drop()
            with pytest.raises(ConnectionLost):
                await anext(sub)
            with pytest.raises(ConnectionLost):
                await mon.batch()
            await sub.close()  # no error: the leases went with the connection

    run(scenario)


def test_closing_the_client_ends_the_streams_cleanly() -> None:
    async def scenario(broker: FakeBroker) -> None:
        mq = await connect(broker)
        sub = await mq.subscribe("jobs")
        reader = asyncio.create_task(anext(sub, "ended"))
        await asyncio.sleep(0.01)
        await mq.close()
        assert await reader == "ended"
        assert await sub.batch() == []

    run(scenario)


def test_reconnect_restores_the_subscription_and_the_monitor() -> None:
    async def scenario(broker: FakeBroker) -> None:
        async with await connect(broker, reconnect=True) as mq:
            sub = await mq.subscribe("jobs", prefetch=4)
            await mq.monitor("jobs")
            broker.drop()
            await asyncio.sleep(0.05)
            await mq.ping()  # waits for the new connection, restored before anyone may use it
            assert mq.reconnects == 1
            subs = [s for s in broker.seen if s.op == "sub"]
            assert [(s.conn, s.request["prefetch"]) for s in subs] == [(1, 4), (2, 4)]
            assert [s.conn for s in broker.seen if s.op == "monitor"] == [1, 2]
            broker.push(2, msgs_push("jobs", 5))
            assert (await anext(sub)).msg_id == 5

    run(scenario)


def test_the_blocking_client_ignores_pushes() -> None:
    fake = ThreadedFakeBroker()
    with fake.running() as broker:
        broker.on_request = pushing_on("ping", [msgs_push("jobs", 1)], [msgs_push("jobs", 2)], broker)
        with Client.connect(broker.url, timeout_s=5) as mq:
            mq.ping()
            broker.on_request = None
            mq.ping()
