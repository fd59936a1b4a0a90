"""Everything that happens because time passed, on a real broker in this process, over real
sockets, on fake time: lease expiry and TOUCH, delays, TTL, GETs that wait out their wait_s,
consumers that fall silent or do not come back in their grace period.

The broker's clock moves only when a test calls `advance`, so none of these can flake on a busy
machine, and none sleeps.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TextSession
from tests.inprocess import InProcessBroker, broker_on_fake_time

NO_REPLY_WAIT_S = 0.1  # how long to listen for a reply that must not come (real seconds)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[InProcessBroker]:
    with broker_on_fake_time(tmp_path / "mq.db") as b:
        yield b


def no_reply_yet(t: TextSession) -> bool:
    t.sock.settimeout(NO_REPLY_WAIT_S)
    try:
        t.sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        t.sock.settimeout(10.0)
    return False


def queue_stats(t: TextSession, queue: str) -> dict[str, str]:
    """The STATS row of `queue`, by column name."""
    t.send(f"STATS {queue}")
    header, row = t.reply()[:2]
    return dict(zip(header.split(), row.split(), strict=True))


def hello(t: TextSession, name: str, heartbeat_s: float) -> str:
    reply = t.ask(f"HELLO {name} {heartbeat_s}")
    assert reply.startswith("+OK session "), reply
    return reply.split()[2]


def test_a_lease_expires_at_lease_s_and_touch_extends_it(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    t.ask("PUB q a")
    t.ask("PUB q b")
    assert t.ask("GET q 1") == "MSG 1.1 q 1 a"
    assert t.ask("GET q 1") == "MSG 2.1 q 1 b"
    broker.advance(0.5)
    assert t.ask("TOUCH 2.1 5") == "+OK 5"
    broker.advance(0.49)
    assert t.ask("GET q 5") == "+EMPTY"  # 1 s has not passed yet
    broker.advance(0.02)
    # 1 expired and came back; 2 was touched and is still leased
    assert t.ask("GET q 5") == "MSG 1.2 q 2 a"
    assert t.ask("ACK 1.1").startswith("-ERR LEASE_LOST lease 1.1 is stale")
    assert t.ask("ACK 2.1") == "+OK"
    assert queue_stats(t, "q")["expired"] == "1"


def test_a_delayed_message_is_ready_when_its_delay_ends(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q delay_s=1.5 later") == "+OK 1"
    assert t.ask("GET q") == "+EMPTY"
    broker.advance(1.49)
    assert t.ask("GET q") == "+EMPTY"
    broker.advance(0.02)
    assert t.ask("GET q") == "MSG 1.1 q 1 later"


def test_a_waiting_get_is_answered_when_a_delay_ends(broker: InProcessBroker) -> None:
    consumer, producer = TextSession(broker.port), TextSession(broker.port)
    assert producer.ask("PUB q delay_s=2 later") == "+OK 1"
    consumer.send("GET q 30 5")
    broker.wait_for_waiting_gets(1)
    assert no_reply_yet(consumer)
    broker.advance(2.0)
    assert consumer.reply() == ["MSG 1.1 q 1 later"]


def test_priority_delay_ttl_and_dedup_together(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q priority=1 low") == "+OK 1"
    assert t.ask("PUB q priority=7 high") == "+OK 2"
    assert t.ask("PUB q delay_s=1.5 later") == "+OK 3"
    assert t.ask("PUB q ttl_s=0.05 fleeting") == "+OK 4"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5 duplicate"
    assert t.ask("PUB q -- priority=3 is the body") == "+OK 6"
    broker.advance(0.1)
    got = [t.ask("GET q").split(" ", 4)[4] for _ in range(4)]
    assert got == ["high", "low", "once", "priority=3 is the body"]  # ttl'd one never shows
    assert t.ask("GET q") == "+EMPTY"
    t.send("GET q 30 5")
    broker.wait_for_waiting_gets(1)
    broker.advance(1.41)
    assert t.reply() == ["MSG 3.1 q 1 later"]  # delivered once its delay is over
    stats = queue_stats(t, "q")
    assert (stats["ttl_expired"], stats["deduplicated"]) == ("1", "1")


def test_not_before_hides_a_message_until_its_time(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    assert t.ask(f"PUB oven not_before={broker.clock.now + 2:.3f} scheduled") == "+OK 1"
    broker.advance(1.9)
    assert t.ask("GET oven") == "+EMPTY"
    broker.advance(0.2)
    assert t.ask("GET oven") == "MSG 1.1 oven 1 scheduled"


def test_a_message_past_its_ttl_is_never_delivered(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q ttl_s=0.05 fleeting") == "+OK 1"
    assert t.ask("PUB q lasting") == "+OK 2"
    broker.advance(0.1)
    assert t.ask("GET q") == "MSG 2.1 q 1 lasting"
    assert t.ask("GET q") == "+EMPTY"
    assert queue_stats(t, "q")["ttl_expired"] == "1"


def test_a_waiting_get_answers_empty_when_wait_s_passes(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    t.send("GET nothing 30 0.3")
    t.send("PING")  # typed behind the waiting GET: answered after it, in order
    broker.wait_for_waiting_gets(1)
    broker.advance(0.29)
    assert no_reply_yet(t)
    broker.advance(0.02)
    assert t.reply() == ["+EMPTY"]
    assert t.reply() == ["+PONG"]


def test_a_silent_session_dies_after_its_missed_heartbeats(broker: InProcessBroker) -> None:
    worker, other = TextSession(broker.port), TextSession(broker.port)
    hello(worker, "sleepy", heartbeat_s=0.25)
    worker.ask("PUB jobs x")
    assert worker.ask("GET jobs 600").startswith("MSG 1.1 ")
    broker.advance(0.7)  # under 3 x 0.25 s: still alive, the lease still held
    assert other.ask("GET jobs 600") == "+EMPTY"
    broker.advance(0.1)
    assert other.ask("GET jobs 600").startswith("MSG 1.2 ")  # given back at once
    assert worker.sock.recv(100) == b""  # the broker closed the silent session's connection
    assert other.ask("ACK 1.2") == "+OK"


def test_a_request_is_a_heartbeat(broker: InProcessBroker) -> None:
    worker, other = TextSession(broker.port), TextSession(broker.port)
    hello(worker, "chatty", heartbeat_s=0.25)
    worker.ask("PUB jobs x")
    assert worker.ask("GET jobs 600").startswith("MSG 1.1 ")
    for _ in range(8):  # 2 s in all, far beyond 3 intervals, but never 3 without a word
        broker.advance(0.25)
        assert worker.ask("PING") == "+PONG"
    assert other.ask("GET jobs 600") == "+EMPTY"
    assert worker.ask("ACK 1.1") == "+OK"


def test_an_idle_plain_connection_is_never_killed(broker: InProcessBroker) -> None:
    idle = TextSession(broker.port)
    idle.ask("PUB q x")
    assert idle.ask("GET q 600").startswith("MSG 1.1")
    broker.advance(300.0)  # 300 default heartbeat intervals
    assert idle.ask("ACK 1.1") == "+OK"


def test_a_session_keeps_its_leases_through_a_reconnect_within_grace(
        broker: InProcessBroker) -> None:
    first, other = TextSession(broker.port), TextSession(broker.port)
    token = hello(first, "mobile", heartbeat_s=5)
    first.ask("PUB jobs x")
    assert first.ask("GET jobs 600").startswith("MSG 1.1 ")
    first.close()
    broker.wait_for_connections(1)
    broker.advance(2.9)  # inside the 3 s grace
    again = TextSession(broker.port)
    assert again.ask(f"HELLO mobile 5 {token}").endswith("resumed=yes")
    assert other.ask("GET jobs 600") == "+EMPTY"
    assert again.ask("ACK 1.1") == "+OK"
    unknown = TextSession(broker.port)
    assert unknown.ask("HELLO mobile 5 nosuchtoken").endswith("resumed=no")


def test_a_session_that_does_not_come_back_in_grace_loses_its_leases(
        broker: InProcessBroker) -> None:
    first, other = TextSession(broker.port), TextSession(broker.port)
    hello(first, "gone", heartbeat_s=5)
    first.ask("PUB jobs x")
    assert first.ask("GET jobs 600").startswith("MSG 1.1 ")
    first.close()
    broker.wait_for_connections(1)
    assert other.ask("GET jobs 600") == "+EMPTY"  # the close itself is no death
    broker.advance(3.01)
    assert other.ask("GET jobs 600").startswith("MSG 1.2 ")
