"""Names are not queues: GET, PEEK, EXPLAIN and STATS of names nobody published to, declared or
subscribed to leave nothing behind (protocol.md 2.3), so a client cannot grow the broker by
asking about new names. Real broker in this process, real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BinarySession, TextSession, frame
from tests.inprocess import InProcessBroker, broker_on_fake_time

NAMES = 10_000
PIPELINE = 500  # requests sent before their replies are read


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[InProcessBroker]:
    with broker_on_fake_time(tmp_path / "mq.db") as b:
        yield b


def pipelined(client: BinarySession, requests: list[dict[str, object]]) -> list[dict[str, object]]:
    """Send `requests` in bursts of PIPELINE, reading each burst's replies before the next."""
    replies = []
    for start in range(0, len(requests), PIPELINE):
        burst = requests[start:start + PIPELINE]
        client.sock.sendall(b"".join(frame({**r, "rid": start + i + 1})
                                     for i, r in enumerate(burst)))
        replies += [client.read() for _ in burst]
    return replies


def test_gets_of_ten_thousand_unknown_names_leave_no_queue(broker: InProcessBroker) -> None:
    client = BinarySession(broker.port)
    replies = pipelined(client, [{"op": "get", "queue": f"nobody-{i}", "max": 10}
                                 for i in range(NAMES)])
    assert all(r["ok"] and r["msgs"] == [] for r in replies)
    assert client.call("queues")["queues"] == []
    assert broker.server.core.queue_names() == []


def test_peek_explain_and_stats_of_unknown_names_leave_no_queue(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    for i in range(100):
        assert t.ask(f"PEEK nobody-{i}") == "+OK 0 messages"
        t.send(f"STATS nobody-{i}")
        assert t.reply()[-1] == "+OK 0 queues"
        t.send(f"EXPLAIN {i + 1}")
        assert t.reply()[-1].startswith("+OK message ")
    t.send("QUEUES")
    assert t.reply() == ["+OK 0 queues"]


def test_a_waiting_get_of_an_unknown_name_is_served_when_it_is_published_to(
        broker: InProcessBroker) -> None:
    consumer, producer = TextSession(broker.port), TextSession(broker.port)
    consumer.send("GET later 30 10")
    producer.send("QUEUES")
    assert producer.reply() == ["+OK 0 queues"]  # waiting for a name does not create it
    assert producer.ask("PUB later x") == "+OK 1"
    assert consumer.reply() == ["MSG 1.1 later 1 x"]
    assert consumer.ask("SUB subscribed").startswith("+OK subscribed to subscribed")
    producer.send("QUEUES")
    assert producer.reply() == ["later", "subscribed", "+OK 2 queues"]  # PUB and SUB create
