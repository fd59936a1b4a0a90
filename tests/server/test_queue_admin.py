"""Administering queues against a real broker: PURGE drops a queue's messages (leases too),
DELETE drops the queue with its messages and bindings; through text mode and the SDK."""

from __future__ import annotations

import pytest
from mq_client import Client
from mq_client.errors import LeaseLost, NotFound

from tests.harness import BrokerProcess, TextSession


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


def test_purge_delete_and_not_found(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        mq.publish_many("scratch", [b"a", b"b", b"c"])
        (leased,) = mq.get("scratch")
        assert mq.purge("scratch") == 3
        with pytest.raises(LeaseLost):
            mq.ack(leased)
        mq.publish_many("scratch", [b"d", b"e"])
        assert mq.bind("t", "scratch") and mq.bindings() == {"t": ["scratch"]}
        assert mq.delete("scratch") == 2
        assert "scratch" not in mq.queues()
        assert mq.bindings() == {}  # its bindings went with it
        with pytest.raises(NotFound):
            mq.delete("scratch")
