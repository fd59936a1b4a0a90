"""Queue administration and introspection in the core: purge, delete, peek and EXPLAIN."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.errors import Code, MQError


def test_purge_delete_and_peek(core: Broker) -> None:
    for i in range(5):
        core.publish("q", b"%d" % i)
    core.lease("q", "h")
    assert [m["body"] for m in core.peek("q", 2)] == [b"1", b"2"]
    assert core.stats("q")["q"]["leased"] == 1  # peek leased nothing
    assert core.purge("q") == 5
    assert core.stats("q")["q"]["ready"] == 0
    core.publish("q", b"x")
    assert core.delete("q") == 1
    assert "q" not in core.queue_names()
    with pytest.raises(MQError) as e:
        core.delete("q")
    assert e.value.code is Code.NOT_FOUND


def test_explain_says_why(core: Broker, clock: FakeClock) -> None:
    delayed = core.publish("q", b"d", delay_s=30).msg_id
    ready = core.publish("q", b"r").msg_id
    assert "delayed" in core.explain(delayed)["why"]
    assert core.explain(ready)["why"].startswith("ready: 0 messages ahead")
    [m] = core.lease("q", "worker-1")
    assert "leased by worker-1" in core.explain(m.msg_id)["why"]
    core.ack(m.msg_id, m.delivery, "worker-1")
    assert core.explain(m.msg_id)["state"] == "gone"
