"""Consumer sessions and groups through text mode, as a telnet user would drive them."""

from __future__ import annotations

import re

from tests.harness import BrokerProcess, TextSession

SESSION = re.compile(r"\+OK session (\w+) heartbeat_s=(\S+) dead_after_s=(\S+) grace_s=(\S+) "
                     r"resumed=(yes|no)")


def hello(t: TextSession, name: str, heartbeat_s: float = 5, token: str = "") -> str:
    match = SESSION.fullmatch(t.ask(f"HELLO {name} {heartbeat_s} {token}".strip()))
    assert match, "unexpected HELLO reply"
    return match.group(1)


def test_join_needs_hello_and_names_are_unique(broker: BrokerProcess) -> None:
    a, b = TextSession(broker.port), TextSession(broker.port)
    assert a.ask("JOIN orders cooks").startswith("-ERR NO_SESSION ")
    hello(a, "alice")
    assert a.ask("JOIN orders cooks 5") == "+OK joined orders/cooks as alice prefetch=5 members=1"
    hello(b, "alice")
    assert b.ask("JOIN orders cooks").startswith("-ERR NAME_TAKEN ")
    assert a.ask("LEAVE orders") == "+OK"
    assert b.ask("JOIN orders cooks").endswith("members=1")


def test_keys_stay_with_their_owner(broker: BrokerProcess) -> None:
    a, b, producer = (TextSession(broker.port) for _ in range(3))
    hello(a, "alice")
    hello(b, "bob")
    a.ask("JOIN orders cooks")
    b.ask("JOIN orders cooks")
    for round_ in range(3):
        for k in range(10):
            producer.ask(f"PUB orders key=store-{k} order {round_}")
    taken: dict[str, set[int]] = {}
    for name, t in (("alice", a), ("bob", b)):
        ids = []
        while (line := t.ask("GET orders")).startswith("MSG "):
            ids.append(int(line.split()[1].split(".")[0]))
        taken[name] = set(ids)
    assert taken["alice"] and taken["bob"]
    assert len(taken["alice"] | taken["bob"]) == 30
    # message ids map to keys round-robin: id i has key store-((i - 1) % 10)
    keys = {name: {(i - 1) % 10 for i in ids} for name, ids in taken.items()}
    assert not keys["alice"] & keys["bob"]
    producer.send("STATS orders")
    lines = producer.reply()
    assert any(line.split()[:2] == ["orders/cooks", "alice"] for line in lines)


def test_plain_connection_close_requeues_at_once(broker: BrokerProcess) -> None:
    a, b = TextSession(broker.port), TextSession(broker.port)
    a.ask("PUB q x")
    assert a.ask("GET q 600").startswith("MSG 1.1")
    a.close()
    assert b.ask("GET q 600 3").startswith("MSG 1.2")


def test_quit_gives_leases_back_without_counting_a_death(broker: BrokerProcess) -> None:
    a, b = TextSession(broker.port), TextSession(broker.port)
    hello(a, "polite")
    a.ask("PUB q x")
    a.ask("GET q 600")
    assert a.ask("QUIT") == "+BYE"
    assert b.ask("GET q 600 3").startswith("MSG 1.2")
    b.send("STATS q")
    row = b.reply()[1].split()
    assert row[0] == "q"


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
