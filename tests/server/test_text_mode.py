"""Text mode through a raw socket, typed as a telnet user would (CRLF), against a real broker."""

from __future__ import annotations

from mq_client import Client

from tests.harness import BrokerProcess, TextSession, wait_until


def test_publish_get_ack_round_trip(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("PING") == "+PONG"
    assert t.ask("PUB orders margherita, table 4") == "+OK 1"
    assert t.ask("PUB orders quattro formaggi") == "+OK 2"
    assert t.ask("GET orders") == "MSG 1.1 orders 1 margherita, table 4"
    assert t.ask("ACK 1.1") == "+OK"
    assert t.ask("ACK 1.1").startswith("-ERR LEASE_LOST ")
    assert t.ask("get orders") == "MSG 2.1 orders 1 quattro formaggi"
    assert t.ask("GET orders") == "+EMPTY"


def test_lf_only_and_case_insensitive_commands(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.sock.sendall(b"ping\npub q hello\n")
    assert t.reply() == ["+PONG"]
    assert t.reply() == ["+OK 1"]


def test_body_escapes_round_trip(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask(r"PUB q line one\nline two\ttab \\ back \x00\xff") == "+OK 1"
    assert t.ask("GET q") == r"MSG 1.1 q 1 line one\nline two\ttab \\ back \x00\xff"
    assert t.ask(r"PUB q bad \q escape").startswith("-ERR BAD_REQUEST ")


def test_nack_redelivers_with_higher_delivery_count(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.ask("PUB jobs encode 720p")
    assert t.ask("GET jobs") == "MSG 1.1 jobs 1 encode 720p"
    assert t.ask("NACK 1.1") == "+OK"
    assert t.ask("GET jobs") == "MSG 1.2 jobs 2 encode 720p"
    assert t.ask("NACK 1.2 0.3") == "+OK"
    assert t.ask("GET jobs") == "+EMPTY"
    assert t.ask("GET jobs 30 5") == "MSG 1.3 jobs 3 encode 720p"


def test_lease_belongs_to_its_connection(broker: BrokerProcess) -> None:
    worker, snoop = TextSession(broker.port), TextSession(broker.port)
    worker.ask("PUB q a")
    assert worker.ask("GET q") == "MSG 1.1 q 1 a"
    assert snoop.ask("ACK 1.1").startswith("-ERR NOT_YOUR_LEASE ")
    assert worker.ask("ACK 1.1") == "+OK"


def test_long_poll_get_waits_for_a_publish(broker: BrokerProcess) -> None:
    consumer, producer = TextSession(broker.port), TextSession(broker.port)
    consumer.send("GET pizzas 30 10")
    consumer.send("PING")  # typed while GET waits: answered after it, in order
    with Client.connect(broker.url) as observer:
        wait_until(lambda: observer.stats()["server"]["waiting_gets"] == 1,
                   "the broker holds the waiting GET")
    assert producer.ask("PUB pizzas diavola") == "+OK 1"
    assert consumer.reply() == ["MSG 1.1 pizzas 1 diavola"]
    assert consumer.reply() == ["+PONG"]


def test_stats_queues_help_declare(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.ask("PUB a x")
    t.ask("PUB b y")
    t.ask("GET a")
    t.send("STATS")
    lines = t.reply()
    assert lines[0].split()[:4] == ["queue", "ready", "delayed", "leased"]
    assert lines[1].split()[:4] == ["a", "0", "0", "1"]
    assert lines[2].split()[:4] == ["b", "1", "0", "0"]
    assert lines[-1] == "+OK 2 queues"
    t.send("QUEUES")
    assert t.reply() == ["a", "b", "+OK 2 queues"]
    t.send("HELP")
    help_lines = t.reply()
    assert help_lines[-1] == "+OK"
    assert {line.split()[0] for line in help_lines[:-1]} >= {"PUB", "GET", "ACK", "NACK", "TOUCH"}
    assert t.ask("DECLARE a retention_s=60 lease_s=2.5") == (
        "+OK a retention_s=60 lease_s=2.5 max_deliveries=0 dead_letter=a.dlq dedup_window_s=300")
    assert t.ask("DECLARE a speed=9").startswith("-ERR BAD_REQUEST ")


def test_errors_keep_the_connection_usable(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("FROB x").startswith("-ERR UNKNOWN_OP ")
    assert t.ask("GET").startswith("-ERR BAD_REQUEST usage: GET")
    assert t.ask("GET q abc").startswith("-ERR BAD_REQUEST ")
    assert t.ask("GET bad/name").startswith("-ERR BAD_REQUEST ")
    assert t.ask("ACK nonsense").startswith("-ERR BAD_REQUEST ")
    assert t.ask("PUB q") .startswith("-ERR BAD_REQUEST usage: PUB")
    t.send("")  # an empty line is ignored
    assert t.ask("PING") == "+PONG"


def test_quit_says_bye_and_closes(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("QUIT") == "+BYE"
    assert t.sock.recv(10) == b""


def test_batch_ack(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    for body in ("a", "b", "c"):
        t.ask(f"PUB q {body}")
    for _ in range(3):
        t.ask("GET q")
    t.send("ACK 1.1 2.1 9.1 3.1")
    assert t.reply() == [
        "failed 9.1 LEASE_LOST lease 9.1 is no longer held: message 9 was acked or removed",
        "+OK 3 acked, 1 failed",
    ]


def test_leading_blanks_zero_counts_and_bad_hex(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("  PING") == "+PONG"
    assert t.ask("PEEK q 0").startswith("-ERR BAD_REQUEST count must be")
    assert t.ask("SUB q 0").startswith("-ERR BAD_REQUEST prefetch must be")
    assert t.ask(r"PUB q \x+f").startswith("-ERR BAD_REQUEST bad escape")
