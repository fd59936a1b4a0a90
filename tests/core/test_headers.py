"""Message headers in the core, on a fake clock: given at publish, they go with every delivery,
every fan-out copy, a dead-letter move and a redrive, and they show in PEEK and EXPLAIN. A
message without headers carries nothing for them."""

from __future__ import annotations

import sys

from mq.core.broker import MESSAGE_OVERHEAD_BYTES, Broker
from mq.core.events import Appended
from mq.core.model import Extra, Message, WithHeaders, headers_size

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def test_every_delivery_returns_the_headers_of_its_publish(core: Broker) -> None:
    core.publish("q", b"with", headers=TRACE)
    core.publish("q", b"without")
    first, second = core.lease("q", "h", max_count=2)
    assert (first.body, first.headers, second.body, second.headers) == (
        b"with", TRACE, b"without", None)
    core.nack(first.msg_id, first.delivery, "h")
    [again] = core.lease("q", "h")
    assert (again.delivery, again.headers) == (2, TRACE)


def test_fan_out_copies_share_the_one_map(core: Broker) -> None:
    core.bind("t", "a")
    core.bind("t", "b")
    core.take_effects()
    ids = core.publish_to_topic("t", b"x", headers=TRACE)
    copies = [c.message for c in core.take_effects().changes if isinstance(c, Appended)]
    assert [m.id for m in copies] == [ids["a"], ids["b"]]
    assert all(m.headers is copies[0].headers for m in copies)
    assert core.lease("b", "h")[0].headers == TRACE


def test_dead_letters_and_redrives_keep_headers(core: Broker) -> None:
    core.declare("jobs", max_deliveries=1)
    msg_id = core.publish("jobs", b"job", headers={"x-job": "7"}).msg_id
    [m] = core.lease("jobs", "h")
    core.nack(m.msg_id, m.delivery, "h", error="boom")
    [peeked] = core.peek("jobs.dlq", 1)
    assert (peeked["dead_from"], peeked["headers"]) == ("jobs", {"x-job": "7"})
    assert core.explain(msg_id)["headers"] == {"x-job": "7"}
    assert core.redrive("jobs.dlq", 10) == 1
    [back] = core.lease("jobs", "h")
    assert (back.msg_id, back.headers) == (msg_id, {"x-job": "7"})


def test_peek_and_explain_leave_headers_out_when_there_are_none(core: Broker) -> None:
    msg_id = core.publish("q", b"x").msg_id
    assert "headers" not in core.peek("q", 1)[0]
    assert "headers" not in core.explain(msg_id)


def test_a_message_without_headers_costs_no_byte_for_them(core: Broker) -> None:
    """Most messages have no Extra at all; those that have one for a TTL or a dedup id get the
    Extra they had before headers existed, one slot smaller than a message with headers."""
    plain = Message(1, "q", b"x", None, 0.0)
    with_ttl = Message(2, "q", b"x", None, 0.0, expires_at=10.0)
    with_headers = Message(3, "q", b"x", None, 0.0, expires_at=10.0, headers=TRACE)
    assert plain.extra is None and plain.headers is None
    assert type(with_ttl.extra) is Extra and with_ttl.headers is None
    assert type(with_headers.extra) is WithHeaders and with_headers.headers is TRACE
    assert sys.getsizeof(with_ttl.extra) < sys.getsizeof(with_headers.extra)
    with_ttl.last_error = "boom"  # an Extra made later is a plain one too
    plain.last_error = "boom"
    assert type(plain.extra) is Extra


def test_a_get_of_many_counts_headers_against_its_byte_budget(core: Broker) -> None:
    big = {"note": "x" * 2_000}
    for _ in range(3):
        core.publish("q", b"body", headers=big)
    one = 4 + MESSAGE_OVERHEAD_BYTES + headers_size(big)
    leased = core.lease("q", "h", max_count=3, max_bytes=2 * one)
    assert len(leased) == 2
    assert len(core.lease("q", "h", max_count=3, max_bytes=one - 1)) == 1  # always one
