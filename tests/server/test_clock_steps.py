"""A step of the broker's wall clock, on a real broker in this process over real sockets
(protocol.md section 4): leases, heartbeats and grace follow the monotonic clock, so setting
the time +-60 s kills no consumer and hands no leased message to a second one.

The broker's two clocks are fake: `step_wall` moves the wall clock alone, `advance` both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TextSession
from tests.inprocess import InProcessBroker, broker_on_fake_time

STEPS_S = (60.0, -60.0, -60.0, 60.0)  # forward, back, back again, and forward to where it was


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[InProcessBroker]:
    with broker_on_fake_time(tmp_path / "mq.db") as b:
        yield b


def stats_of(t: TextSession, queue: str) -> dict[str, str]:
    t.send(f"STATS {queue}")
    header, row = t.reply()[:2]
    return dict(zip(header.split(), row.split(), strict=True))


def test_a_wall_clock_step_kills_no_consumer_and_hands_no_lease_to_another(
        broker: InProcessBroker) -> None:
    worker, other = TextSession(broker.port), TextSession(broker.port)
    assert worker.ask("HELLO worker 5").startswith("+OK session ")  # dead after 15 s silent
    assert other.ask("HELLO other 5").startswith("+OK session ")
    for body in ("a", "b", "c"):
        worker.ask(f"PUB jobs {body}")
    receipts = [worker.ask("GET jobs 30").split()[1] for _ in range(3)]
    assert receipts == ["1.1", "2.1", "3.1"]

    for step in STEPS_S:
        broker.step_wall(step)
        assert other.ask("GET jobs 30") == "+EMPTY"  # nothing handed out a second time
        assert worker.ask("PING") == "+PONG"  # alive: its connection was not closed
        assert other.ask("PING") == "+PONG"
    assert worker.ask(f"ACK {receipts[0]}") == "+OK"  # its lease is still its own

    # The leases still end on time: 30 s after they were taken, by the monotonic clock.
    broker.advance(10)
    assert worker.ask(f"TOUCH {receipts[1]} 30") == "+OK 30"
    assert other.ask("PING") == "+PONG"  # every request is a heartbeat: 15 s silent is death
    broker.advance(10)
    assert (worker.ask("PING"), other.ask("PING")) == ("+PONG", "+PONG")
    broker.advance(9.5)
    assert other.ask("GET jobs 30") == "+EMPTY"
    broker.advance(0.5)
    assert other.ask("GET jobs 30") == "MSG 3.2 jobs 2 c"  # 3's lease ended, at 30 s
    assert worker.ask(f"ACK {receipts[1]}") == "+OK"  # touched at 10 s: held until 40 s
    stats = stats_of(other, "jobs")
    assert (stats["expired"], stats["released"], stats["acked"]) == ("1", "0", "2")


def test_a_wall_clock_step_does_not_end_a_grace_period(broker: InProcessBroker) -> None:
    """A consumer that lost its connection keeps its leases for grace_s (3 s), whatever the
    wall clock does meanwhile."""
    first, other = TextSession(broker.port), TextSession(broker.port)
    token = first.ask("HELLO mobile 5").split()[2]
    first.ask("PUB jobs x")
    assert first.ask("GET jobs 30").startswith("MSG 1.1 ")
    first.close()
    broker.wait_for_connections(1)
    for step in STEPS_S:
        broker.step_wall(step)
        assert other.ask("GET jobs 30") == "+EMPTY"
    again = TextSession(broker.port)
    assert again.ask(f"HELLO mobile 5 {token}").endswith("resumed=yes")
    assert again.ask("ACK 1.1") == "+OK"
