"""The blocking client's session: hello, its heartbeat thread, join and leave (fake broker)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_broker import FakeBroker, ThreadedFakeBroker, max_gap_s

from mq_client import Client, Session
from mq_client.errors import ConnectionLost, NoSession


@pytest.fixture
def fake() -> Iterator[ThreadedFakeBroker]:
    threaded = ThreadedFakeBroker()
    with threaded.running():
        yield threaded


def _broker(fake: ThreadedFakeBroker) -> FakeBroker:
    return fake.broker


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mq-client-heartbeat"]


def test_hello_join_leave(fake: ThreadedFakeBroker) -> None:
    with Client.connect(fake.broker.url) as mq:
        session = mq.hello("w1", heartbeat_s=0.5)
        assert session == Session("t1", "w1", 0.5, 1.5, 3.0, False) == mq.session
        assert mq.join("jobs", "g", prefetch=4) == {"queue": "jobs", "group": "g", "consumer": "c",
                                                     "prefetch": 4, "members": 1}
        mq.leave("jobs")
        mq.heartbeat()
        assert mq.hello("w1").token == "t1"  # hello again: the same session
    requests = [s.request for s in fake.broker.seen]
    assert requests[1] == {"op": "join", "rid": 2, "queue": "jobs", "group": "g", "prefetch": 4}
    assert requests[2] == {"op": "leave", "rid": 3, "queue": "jobs"}
    assert [r for r in requests if r["op"] == "hello"][1]["session"] == "t1"
    assert fake.broker.ops()[-1] == "quit"


def test_a_thread_keeps_the_session_alive_while_the_caller_is_busy(fake: ThreadedFakeBroker) -> None:
    with Client.connect(fake.broker.url) as mq:
        mq.hello("w1", heartbeat_s=0.1)
        start = time.monotonic()
        time.sleep(0.6)  # a handler that blocks this thread
        end = time.monotonic()
        assert max_gap_s(fake.broker.seen, start, end) < 0.1
        assert fake.broker.ops().count("heartbeat") >= 5
        # The heartbeat thread took their replies out between calls; ours are still matched.
        assert len(mq._link.heartbeat_rids) <= 1
        assert mq.join("jobs", "g")["queue"] == "jobs"


def test_heartbeats_go_on_during_a_long_get(fake: ThreadedFakeBroker) -> None:
    fake.broker.get_delay_s = 0.6
    with Client.connect(fake.broker.url) as mq:
        mq.hello("w1", heartbeat_s=0.1)
        start = time.monotonic()
        assert mq.get("jobs", wait_s=1) == []
        end = time.monotonic()
        assert end - start >= 0.55
        assert max_gap_s(fake.broker.seen, start, end) < 0.1
        assert len(mq._link.heartbeat_rids) <= 1  # this thread read and discarded their replies


def test_close_stops_the_thread_and_says_goodbye(fake: ThreadedFakeBroker) -> None:
    mq = Client.connect(fake.broker.url)
    mq.hello("w1", heartbeat_s=0.1)
    assert len(_heartbeat_threads()) == 1
    thread = _heartbeat_threads()[0]
    assert thread.daemon
    mq.close()
    assert not thread.is_alive()
    assert fake.broker.ops()[-1] == "quit"
    seen = len(fake.broker.seen)
    time.sleep(0.25)
    assert len(fake.broker.seen) == seen
    mq.close()


def test_no_thread_and_no_goodbye_without_a_session(fake: ThreadedFakeBroker) -> None:
    with Client.connect(fake.broker.url) as mq:
        mq.ping()
        assert _heartbeat_threads() == []
    assert fake.broker.ops() == ["ping"]


def test_a_broken_connection_ends_the_thread_and_fails_the_next_call(fake: ThreadedFakeBroker) -> None:
    with Client.connect(fake.broker.url) as mq:
        mq.hello("w1", heartbeat_s=0.1)
        (thread,) = _heartbeat_threads()
        fake.run(_drop(fake.broker))
        thread.join(2)
        assert not thread.is_alive()
        with pytest.raises(ConnectionLost):
            mq.ping()


async def _drop(broker: FakeBroker) -> None:
    broker.drop()


def test_heartbeat_frames_never_land_inside_a_request(fake: ThreadedFakeBroker) -> None:
    # A slow reader and small buffers make a 2 MB frame take far longer to send than a heartbeat
    # interval: a heartbeat written in the middle would be garbage to the broker.
    fake.broker.read_chunk_bytes = 16384
    fake.broker.read_pause_s = 0.002
    sock = socket.create_connection(("127.0.0.1", fake.broker.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    with Client(sock) as mq:
        mq.hello("w1", heartbeat_s=0.05)
        start = time.monotonic()
        mq.publish("big", b"x" * 2_000_000)
        assert time.monotonic() - start > 0.1  # it did take several heartbeat intervals
        time.sleep(0.1)
        mq.ping()
    assert fake.broker.bad_frames == 0
    assert "heartbeat" in fake.broker.ops()


def test_join_before_hello_is_no_session(fake: ThreadedFakeBroker) -> None:
    async def no_session(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
        if request["op"] == "join":
            return {"ok": False, "code": "NO_SESSION", "message": "say HELLO first", "fatal": False}
        return None

    fake.broker.on_request = no_session
    with Client.connect(fake.broker.url) as mq, pytest.raises(NoSession):
        mq.join("jobs", "g")
