"""Requests and replies of the queue features: publish options, fanout, nack errors, queue
administration and introspection, subscriptions (protocol.md 2.3)."""

from __future__ import annotations

from typing import Any

import pytest

from mq_client import Message, PeekedMessage, PublishResult, admin_ops, ops
from mq_client.codec import encode_frame
from mq_client.errors import NotFound, ProtocolError, error_class
from mq_client.ops import BatchOptions, PublishOptions
from mq_client.request import Request, check_reply

ALL = PublishOptions(priority=7, delay_s=1.5, not_before=1_800_000_000.0, ttl_s=60, dedup_id="order-17")


def ok(**fields: Any) -> dict[str, Any]:
    return {"rid": 1, "ok": True, **fields}


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (ops.publish("q", b"b", None, **PublishOptions(priority=3)), {"op": "pub", "queue": "q", "body": b"b",
                                                                    "priority": 3}),
        (ops.publish("q", "b", "k", **ALL), {"op": "pub", "queue": "q", "body": b"b", "key": "k", "priority": 7,
                                           "delay_s": 1.5, "not_before": 1_800_000_000.0, "ttl_s": 60,
                                           "dedup_id": "order-17"}),
        (ops.publish_dedup("q", b"b", "d"), {"op": "pub", "queue": "q", "body": b"b",
                                                                             "dedup_id": "d"}),
        (ops.publish_batches("q", [b"a", b"b"], 10, 1 << 20, PublishOptions(priority=9, delay_s=2, ttl_s=5))[0],
         {"op": "mpub", "queue": "q", "bodies": [b"a", b"b"], "priority": 9, "delay_s": 2, "ttl_s": 5}),
        (ops.fanout("videos", b"v"), {"op": "fanout", "topic": "videos", "body": b"v"}),
        (ops.fanout("videos", b"v", "k", **PublishOptions(priority=1, dedup_id="x")),
         {"op": "fanout", "topic": "videos", "body": b"v", "key": "k", "priority": 1, "dedup_id": "x"}),
        (ops.nack("1.1", error="ValueError: bad input"), {"op": "nack", "receipt": "1.1",
                                                           "error": "ValueError: bad input"}),
        (ops.nack("1.1", 5, "late"), {"op": "nack", "receipt": "1.1", "delay_s": 5, "error": "late"}),
        (ops.subscribe("q"), {"op": "sub", "queue": "q"}),
        (ops.subscribe("q", 5, 2.5), {"op": "sub", "queue": "q", "prefetch": 5, "lease_s": 2.5}),
        (ops.unsubscribe("q"), {"op": "unsub", "queue": "q"}),
        (ops.monitor(), {"op": "monitor"}),
        (ops.monitor("q"), {"op": "monitor", "queue": "q"}),
        (admin_ops.declare("q", max_deliveries=3, dead_letter="q.dead", dedup_window_s=60),
         {"op": "declare", "queue": "q", "max_deliveries": 3, "dead_letter": "q.dead", "dedup_window_s": 60}),
        (admin_ops.declare("q", retention_s=10, lease_s=2), {"op": "declare", "queue": "q", "retention_s": 10,
                                                             "lease_s": 2}),
        (admin_ops.purge("q"), {"op": "purge", "queue": "q"}),
        (admin_ops.delete("q"), {"op": "delete", "queue": "q"}),
        (admin_ops.peek("q"), {"op": "peek", "queue": "q"}),
        (admin_ops.peek("q", 3), {"op": "peek", "queue": "q", "count": 3}),
        (admin_ops.redrive("q.dlq"), {"op": "redrive", "queue": "q.dlq"}),
        (admin_ops.redrive("q.dlq", 5, "other"), {"op": "redrive", "queue": "q.dlq", "count": 5, "to": "other"}),
        (admin_ops.bind("t", "q"), {"op": "bind", "topic": "t", "queue": "q"}),
        (admin_ops.unbind("t", "q"), {"op": "unbind", "topic": "t", "queue": "q"}),
        (admin_ops.bindings(), {"op": "bindings"}),
        (admin_ops.bindings("t"), {"op": "bindings", "topic": "t"}),
        (admin_ops.explain(17), {"op": "explain", "msg_id": 17}),
        (admin_ops.history(17), {"op": "history", "msg_id": 17}),
    ],
)
def test_request_fields(request_: Request[Any], fields: dict[str, Any]) -> None:
    assert request_.fields == fields
    assert list(request_.to_wire(4))[:2] == ["op", "rid"]


def test_no_options_keep_the_plain_pub_frame() -> None:
    assert ops.publish("q", b"b").fields == ops.publish("q", b"b", None, **PublishOptions()).fields
    assert ops.publish("q", b"b").fields == {"op": "pub", "queue": "q", "body": b"b"}


def test_mpub_refuses_a_dedup_id() -> None:
    with pytest.raises(ValueError, match="dedup_id"):
        ops.publish_batches("q", [b"a"], 10, 1 << 20, PublishOptions(dedup_id="d"))


def test_mpub_options_fit_the_frame_budget() -> None:
    # Bodies that just fit an mpub without options must still fit with every option set.
    every = BatchOptions(priority=7, delay_s=1.5, not_before=1e9, ttl_s=60.0)
    requests = ops.publish_batches("q", [b"x" * 900] * 10, 10, 4096, every)
    assert len(requests) > 1
    assert all(len(encode_frame(r.to_wire(2**63))) <= 4096 + 4 for r in requests)


def test_publish_replies() -> None:
    assert ops.publish("q", b"").parse(ok(msg_id=4, duplicate=True)) == 4
    assert ops.publish_dedup("q", b"", "d").parse(ok(msg_id=4)) == PublishResult(4, False)
    assert ops.publish_dedup("q", b"", "d").parse(ok(msg_id=4, duplicate=True)) == PublishResult(4, True)
    assert ops.fanout("t", b"").parse(ok(msg_ids={"a": 1, "b": 2})) == {"a": 1, "b": 2}
    assert ops.fanout("t", b"").parse(ok(msg_ids={})) == {}


def test_admin_replies() -> None:
    settings = {"queue": "q", "retention_s": 60.0, "lease_s": 5.0, "max_deliveries": 3, "dead_letter": "q.dlq",
                "dedup_window_s": 300}
    assert admin_ops.declare("q").parse(ok(**settings)) == settings
    assert admin_ops.purge("q").parse(ok(purged=3)) == 3
    assert admin_ops.delete("q").parse(ok(queue="q", deleted=2)) == 2
    assert admin_ops.redrive("q").parse(ok(redriven=1)) == 1
    assert admin_ops.bind("t", "q").parse(ok(changed=True, bindings={"t": ["q"]})) is True
    assert admin_ops.unbind("t", "q").parse(ok(changed=False, bindings={"t": []})) is False
    assert admin_ops.bindings().parse(ok(bindings={"t": ["a", "b"], "u": []})) == {"t": ["a", "b"], "u": []}
    why = {"msg_id": 3, "state": "leased", "why": "leased by c1", "holder": "c1", "lease_deadline": 1.0}
    assert admin_ops.explain(3).parse(ok(**why)) == why
    events = [{"at": 1.0, "event": "published", "queue": "q"}, {"at": 2.0, "event": "acked"}]
    assert admin_ops.history(3).parse(ok(msg_id=3, events=events)) == events


def test_peek_reply_is_typed_with_dead_letter_fields() -> None:
    live = {"msg_id": 1, "queue": "q", "deliveries": 0, "body": b"a", "key": None, "priority": 2,
            "published_at": 5, "last_error": None}
    dead = {**live, "msg_id": 2, "queue": "q.dlq", "deliveries": 3, "last_error": "boom", "dead_from": "q",
            "dead_reason": "delivered 3 times (max_deliveries=3)", "dead_at": 9.5}
    first, second = admin_ops.peek("q").parse(ok(msgs=[live, dead]))
    assert first == PeekedMessage(1, "q", 0, b"a", None, 2, 5.0)
    assert not first.dead and isinstance(first.published_at, float)
    assert second.dead and (second.dead_from, second.last_error, second.dead_at) == ("q", "boom", 9.5)
    assert second.dead_reason == "delivered 3 times (max_deliveries=3)"


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (ops.publish_dedup("q", b"", "d"), {"ok": True, "msg_id": 1, "duplicate": 1}),
        (ops.publish_dedup("q", b"", "d"), {"ok": True, "duplicate": False}),
        (ops.fanout("t", b""), {"ok": True, "msg_ids": [1]}),
        (ops.fanout("t", b""), {"ok": True, "msg_ids": {"a": "1"}}),
        (admin_ops.purge("q"), {"ok": True, "purged": None}),
        (admin_ops.delete("q"), {"ok": True, "queue": "q"}),
        (admin_ops.redrive("q"), {"ok": True, "redriven": True}),
        (admin_ops.bind("t", "q"), {"ok": True, "changed": 1}),
        (admin_ops.bindings(), {"ok": True, "bindings": {"t": "q"}}),
        (admin_ops.bindings(), {"ok": True, "bindings": {"t": [1]}}),
        (admin_ops.peek("q"), {"ok": True, "msgs": [{"msg_id": 1}]}),
        (admin_ops.peek("q"), {"ok": True, "msgs": ["x"]}),
        (admin_ops.explain(1), {"ok": True, "state": "gone"}),
        (admin_ops.history(1), {"ok": True, "events": [{"at": 1.0}]}),
        (admin_ops.declare("q"), {"ok": True}),
    ],
)
def test_malformed_replies_are_protocol_errors(request_: Request[Any], reply: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        request_.parse(check_reply(reply))


def test_not_found_is_typed() -> None:
    assert error_class("NOT_FOUND") is NotFound
    with pytest.raises(NotFound) as info:
        check_reply({"rid": 1, "ok": False, "code": "NOT_FOUND", "message": "no queue 'x'", "fatal": False})
    assert info.value.message == "no queue 'x'" and not info.value.fatal


def test_message_priority_defaults_to_zero() -> None:
    wire = {"receipt": "1.1", "msg_id": 1, "queue": "q", "deliveries": 1, "body": b"", "key": None,
            "published_at": 0.0}
    assert Message.from_wire(wire).priority == 0
    assert Message.from_wire({**wire, "priority": None}).priority == 0
    assert Message.from_wire({**wire, "priority": 9}).priority == 9
    with pytest.raises(ProtocolError):
        Message.from_wire({**wire, "priority": "9"})
    with pytest.raises(ProtocolError):
        Message.from_wire({**wire, "priority": True})
