"""MONITOR against a real broker: events stream as they commit, filtered by queue (an event is
filed under the queue it happened in), until UNMONITOR; through text mode and the SDK."""

from __future__ import annotations

from mq_client import AsyncClient

from tests.harness import BrokerProcess, TextSession, run_with_client


def test_monitor_tails_events(broker: BrokerProcess) -> None:
    watcher, t = TextSession(broker.port), TextSession(broker.port)
    assert watcher.ask("MONITOR pizzas").startswith("+OK monitoring pizzas")
    t.ask("PUB pizzas key=store-1 diavola")
    t.ask("PUB other ignored")
    t.ask("GET pizzas")
    t.ask("ACK 1.1")
    lines = [watcher.read_line() for _ in range(3)]
    assert [line.split()[2:5] for line in lines] == [
        ["pizzas", "1", "published"], ["pizzas", "1", "leased"], ["pizzas", "1", "acked"]]
    assert "key=store-1" in lines[0]


def test_unmonitor_stops_the_stream(broker: BrokerProcess) -> None:
    watcher, t = TextSession(broker.port), TextSession(broker.port)
    watcher.ask("MONITOR")
    t.ask("PUB q one")
    assert watcher.read_line().split()[4] == "published"
    assert watcher.ask("UNMONITOR") == "+OK"
    t.ask("PUB q two")
    assert watcher.ask("PING") == "+PONG"  # no EVENT line came before the reply


def test_filtered_monitor_sees_events_under_the_queue_they_happened_in(
        broker: BrokerProcess) -> None:
    watcher, t = TextSession(broker.port), TextSession(broker.port)
    t.ask("DECLARE mq1 max_deliveries=1")
    watcher.ask("MONITOR mq1")
    t.ask("PUB mq1 doomed")
    t.ask("GET mq1")
    t.ask("NACK 1.1 0 broken")
    events = [watcher.read_line().split()[4:6] for _ in range(4)]
    assert [e[0] for e in events] == ["published", "leased", "nacked", "dead-lettered"]


def test_monitor_receives_events_as_they_commit(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        async with AsyncClient.connect(broker.url) as watcher:
            mon = await watcher.monitor("pizzas")
            msg_id = await mq.publish("pizzas", b"diavola", key="store-1")
            await mq.publish("other", b"not watched")
            (msg,) = await mq.get("pizzas")
            await mq.ack(msg)
            events = [await anext(mon) for _ in range(3)]
            assert [(e["queue"], e["msg_id"], e["event"]) for e in events] == [
                ("pizzas", msg_id, "published"), ("pizzas", msg_id, "leased"),
                ("pizzas", msg_id, "acked")]
            assert events[0]["key"] == "store-1" and events[1]["delivery"] == 1
            await mon.close()

    run_with_client(broker.url, scenario)
