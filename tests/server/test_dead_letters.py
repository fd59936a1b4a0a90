"""The queue features through text mode against a real broker, as a telnet user types them."""

from __future__ import annotations

import time

from tests.harness import BrokerProcess
from tests.textclient import TextSession


def test_priority_delay_ttl_and_dedup(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q priority=1 low") == "+OK 1"
    assert t.ask("PUB q priority=7 high") == "+OK 2"
    assert t.ask("PUB q delay_s=1.5 later") == "+OK 3"
    assert t.ask("PUB q ttl_s=0.05 fleeting") == "+OK 4"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5"
    assert t.ask("PUB q dedup=order-9 once") == "+OK 5 duplicate"
    assert t.ask("PUB q -- priority=3 is the body") == "+OK 6"
    time.sleep(0.1)
    got = [t.ask("GET q").split(" ", 4)[4] for _ in range(4)]
    assert got == ["high", "low", "once", "priority=3 is the body"]  # ttl'd one never shows
    assert t.ask("GET q") == "+EMPTY"
    started = time.monotonic()
    assert t.ask("GET q 30 5") == "MSG 3.1 q 1 later"  # delivered once its delay is over
    assert time.monotonic() - started < 2.0
    t.send("STATS q")
    header, row = t.reply()[:2]
    stats = dict(zip(header.split(), row.split(), strict=True))
    assert (stats["ttl_expired"], stats["deduplicated"]) == ("1", "1")


def test_dead_letters_peek_redrive_explain_history(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("DECLARE jobs max_deliveries=2").endswith(
        "dead_letter=jobs.dlq dedup_window_s=300")
    assert t.ask("PUB jobs resize cat.png") == "+OK 1"
    assert t.ask("GET jobs") == "MSG 1.1 jobs 1 resize cat.png"
    assert t.ask("NACK 1.1 0 PIL error: truncated file") == "+OK"
    assert t.ask("GET jobs") == "MSG 1.2 jobs 2 resize cat.png"
    assert t.ask("NACK 1.2 0 still truncated") == "+OK"
    assert t.ask("GET jobs") == "+EMPTY"
    t.send("PEEK jobs.dlq")
    peeked = t.reply()
    assert peeked[-1] == "+OK 1 messages"
    assert "dead_from=jobs" in peeked[0] and "last_error='still truncated'" in peeked[0]
    t.send("EXPLAIN 1")
    explained = t.reply()
    assert explained[-1].startswith("+OK dead-lettered from jobs: delivered 2 times")
    t.send("HISTORY 1")
    history = t.reply()
    assert history[-1] == "+OK 6 events"
    events = [line.split(" ", 1)[1] for line in history[:-1]]
    assert events[0].startswith("published queue=jobs")
    assert events[1].startswith("leased delivery=1 holder=c")
    assert events[2] == "nacked error='PIL error: truncated file'" or events[2].startswith(
        "nacked error=")
    assert events[5].startswith("dead-lettered queue=jobs.dlq")
    assert t.ask("REDRIVE jobs.dlq") == "+OK redriven 1 messages"
    assert t.ask("GET jobs") == "MSG 1.3 jobs 3 resize cat.png"
    assert t.ask("EXPLAIN 99").startswith("+OK message 99 is not in any queue")


def test_fanout_to_bound_queues(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("FANOUT uploads video-1").startswith("+OK 0 copies")
    for q in ("p144", "p720", "captions"):
        assert t.ask(f"BIND uploads {q}").startswith("+OK changed")
    t.send("BINDINGS")
    assert t.reply() == ["uploads -> captions, p144, p720", "+OK 1 topics"]
    assert t.ask("FANOUT uploads key=v7 video-7") == "+OK 3 copies: captions=1 p144=2 p720=3"
    assert t.ask("GET p720") == "MSG 3.1 p720 1 video-7"
    assert t.ask("ACK 3.1") == "+OK"
    assert t.ask("GET p144") == "MSG 2.1 p144 1 video-7"  # acked on its own
    assert t.ask("UNBIND uploads p720").startswith("+OK changed")


def test_purge_and_delete(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    for i in range(3):
        t.ask(f"PUB tmp m{i}")
    assert t.ask("PURGE tmp") == "+OK purged 3 messages"
    t.ask("PUB tmp again")
    assert t.ask("DELETE tmp") == "+OK deleted tmp and its 1 messages"
    assert t.ask("DELETE tmp").startswith("-ERR NOT_FOUND ")
    t.send("QUEUES")
    assert t.reply() == ["+OK 0 queues"]


def test_sub_pushes_up_to_prefetch_and_more_after_acks(broker: BrokerProcess) -> None:
    worker, producer = TextSession(broker.port), TextSession(broker.port)
    assert worker.ask("SUB orders 2").startswith("+OK subscribed to orders prefetch=2")
    for i in range(4):
        producer.ask(f"PUB orders o{i}")
    assert worker.read_line() == "MSG 1.1 orders 1 o0"
    assert worker.read_line() == "MSG 2.1 orders 1 o1"
    worker.sock.settimeout(0.3)
    try:
        extra = worker.read_line()
    except TimeoutError:
        extra = None
    assert extra is None  # prefetch 2: no third message until an ack
    worker.sock.settimeout(10)
    worker.send("ACK 1.1")
    lines = [worker.read_line(), worker.read_line()]
    assert "+OK" in lines and "MSG 3.1 orders 1 o2" in lines


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
