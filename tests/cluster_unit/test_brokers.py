"""Two real brokers of one cluster (processes, a real etcd, a real Postgres): they share the
slots, a request at the wrong broker gets MOVED naming the right one, a cross-slot request
gets CROSSSLOT, and when one is killed with SIGKILL the other takes over its slots and
delivers what was confirmed there."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from mq_client import Client

from mq.cluster.slots import SLOTS, slot_of
from tests.cluster_unit.etcd_node import EtcdNode
from tests.harness import BrokerProcess, TextSession

WITHIN_S = 30.0


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WITHIN_S} s: {what}")
        time.sleep(0.1)


def owners(session: TextSession) -> dict[int, str]:
    session.send("CLUSTER")
    out: dict[int, str] = {}
    for text in session.reply()[:-1]:
        if text.startswith("slots "):
            span, node = text.split()[1:3]
            first, last = (int(x) for x in span.split("-"))
            out.update(dict.fromkeys(range(first, last + 1), node))
    return out


def server_stats(broker: BrokerProcess) -> dict[str, object]:
    with Client.connect(broker.url) as client:
        return dict(client.stats()["server"])


@pytest.fixture
def brokers(etcd_node: EtcdNode, cluster_name: str, pg_url: str) -> Iterator[
        dict[str, BrokerProcess]]:
    common = ("--cluster", cluster_name, "--etcd", etcd_node.endpoint, "--cluster-poll-s",
              "0.1", "--cluster-ttl-s", "2")
    procs = {n: BrokerProcess(pg_url, *common, "--node", n) for n in ("b1", "b2")}
    try:
        for p in procs.values():
            p.start()
        until(lambda: all(p.logged(f"cluster {cluster_name} node", "joined")
                          for p in procs.values()), "both brokers joined")
        yield procs
    finally:
        for p in procs.values():
            p.kill()


def a_queue_of(node: str, where: dict[int, str]) -> str:
    return next(q for q in (f"q{i}" for i in range(10_000)) if where.get(slot_of(q)) == node)


def test_requests_go_to_the_slots_owner_and_follow_it_when_it_dies(
        brokers: dict[str, BrokerProcess]) -> None:
    b1, b2 = TextSession(brokers["b1"].port), TextSession(brokers["b2"].port)
    until(lambda: len(set(owners(b1).values())) == 2 and len(owners(b1)) == SLOTS,
          "the slots are shared by both")
    where = owners(b1)
    theirs = a_queue_of("b2", where)
    reply = b1.ask(f"PUB {theirs} hello")
    assert reply.startswith(f"-ERR MOVED {slot_of(theirs)} 127.0.0.1:{brokers['b2'].port} ")
    until(lambda: b2.ask(f"PUB {theirs} hello").startswith("+OK "), "b2 serves its slot")
    other = next(q for q in (f"x{i}" for i in range(10_000)) if slot_of(q) != slot_of(theirs))
    assert b2.ask(f"BIND {other} {theirs}").startswith("-ERR CROSSSLOT ")

    brokers["b2"].kill()
    until(lambda: owners(b1).get(slot_of(theirs)) == "b1", "b1 owns b2's slots")
    until(lambda: b1.ask(f"PEEK {theirs}").startswith("+OK 1 messages"),
          "b1 serves the slot it took over")
    b1.send(f"GET {theirs}")
    assert b1.reply()[0].startswith("MSG ")
    until(lambda: server_stats(brokers["b1"])["slots_owned"] == SLOTS, "b1 serves every slot")
    figures = server_stats(brokers["b1"])
    assert figures["node"] == "b1" and int(str(figures["map_epoch"])) > 0
