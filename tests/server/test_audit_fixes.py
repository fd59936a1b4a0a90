"""Edge cases found by reading protocol.md against the broker, each pinned over a real socket."""

from __future__ import annotations

from tests.harness import BrokerProcess
from tests.server.test_bad_input import binary, frame, read_frame
from tests.textclient import TextSession


def test_odd_receipts_are_bad_requests_not_closed_connections(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("ACK \u00b2.1").startswith("-ERR BAD_REQUEST ")  # a digit int() refuses
    assert t.ask("ACK \u0661.\u0661").startswith("-ERR BAD_REQUEST ")  # non-ASCII digits
    assert t.ask("ACK " + "1" * 5000 + ".1").startswith("-ERR BAD_REQUEST ")
    s = binary(broker.port)
    s.sendall(frame({"op": "ack", "rid": 1, "receipt": "\u00b2.1"}))
    assert read_frame(s)["code"] == "BAD_REQUEST"
    s.sendall(frame({"op": "ping", "rid": 2}))
    assert read_frame(s) == {"rid": 2, "ok": True}


def test_leading_blanks_zero_counts_and_bad_hex(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("  PING") == "+PONG"
    assert t.ask("PEEK q 0").startswith("-ERR BAD_REQUEST count must be")
    assert t.ask("SUB q 0").startswith("-ERR BAD_REQUEST prefetch must be")
    assert t.ask(r"PUB q \x+f").startswith("-ERR BAD_REQUEST bad escape")


def test_leases_taken_before_hello_move_to_the_session(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.ask("PUB q job")
    assert t.ask("GET q 600") == "MSG 1.1 q 1 job"
    assert t.ask("HELLO w1 5").startswith("+OK session ")
    assert t.ask("ACK 1.1") == "+OK"


def test_closing_a_plain_connection_is_not_a_death(broker: BrokerProcess) -> None:
    for _ in range(4):  # poison_deaths is 3: four closes would poison it if they counted
        t = TextSession(broker.port)
        t.ask("PUB q x") if _ == 0 else None
        assert t.ask("GET q 600 5").startswith("MSG 1.")
        t.close()
    t = TextSession(broker.port)
    assert t.ask("GET q 600 5").startswith("MSG 1.5 q 5 ")


def test_goodbye_respects_max_deliveries(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.ask("DECLARE jobs max_deliveries=1")
    t.ask("HELLO polite 5")
    t.ask("PUB jobs once")
    assert t.ask("GET jobs 600") == "MSG 1.1 jobs 1 once"
    assert t.ask("QUIT") == "+BYE"
    t2 = TextSession(broker.port)
    assert t2.ask("GET jobs") == "+EMPTY"
    t2.send("PEEK jobs.dlq")
    assert t2.reply()[-1] == "+OK 1 messages"


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
