"""Requests are byte-exact with the shared vectors; replies are read and checked."""

from __future__ import annotations

from typing import Any

import pytest
from sdk_vectors import vector

from mq_client import Message, admin_ops, ops
from mq_client.codec import encode_frame
from mq_client.errors import BadRequest, FrameTooLarge, LeaseLost, ProtocolError
from mq_client.message import AckFailure, AckResult
from mq_client.request import Request, check_reply

MSG = Message("3.1", 3, "orders", 1, b"x", None, 0.0)
MSG_2 = Message("2.1", 2, "orders", 1, b"y", None, 0.0)


def _frame(request: Request[Any], rid: int) -> bytes:
    return encode_frame(request.to_wire(rid))


@pytest.mark.parametrize(
    ("name", "request_", "rid"),
    [
        ("ping request", ops.ping(), 1),
        ("pub request", ops.publish("orders", b"margherita"), 2),
        ("pub request", ops.publish("orders", "margherita"), 2),
        ("pub request", ops.publish("orders", bytearray(b"margherita")), 2),
        ("pub request with key", ops.publish("orders", b"\x00\xff", key="store-7"), 3),
        ("mpub request", ops.publish_batches("orders", [b"a", "b"], 1000, 1 << 20)[0], 4),
        ("get request", ops.get("orders", lease_s=30, wait_s=1.5, max=10), 5),
        ("ack request", ops.ack("1.1"), 7),
        ("batch ack request", ops.ack_batch(["1.1", "2.1"]), 16),
        ("batch ack request", ops.ack_batches(["1.1", MSG_2], 1 << 20)[0], 16),
        ("nack request", ops.nack("2.1", delay_s=5), 8),
        ("touch request", ops.touch("3.1", lease_s=60), 9),
        ("touch request", ops.touch(MSG, lease_s=60), 9),
        ("auth request", ops.auth("alice", "open sesame"), 20),
    ],
)
def test_request_matches_vector(name: str, request_: Request[Any], rid: int) -> None:
    v = vector(name)
    assert request_.to_wire(rid) == v["meaning"]
    assert _frame(request_, rid) == v["frame"]


def test_wire_map_puts_op_and_rid_first() -> None:
    assert list(ops.get("q", lease_s=1).to_wire(9)) == ["op", "rid", "queue", "lease_s", "max"]


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (ops.publish("q", b"b"), {"op": "pub", "queue": "q", "body": b"b"}),
        (ops.get("q"), {"op": "get", "queue": "q", "max": 1}),
        (ops.nack("1.1"), {"op": "nack", "receipt": "1.1"}),
        (ops.touch("1.1"), {"op": "touch", "receipt": "1.1"}),
        (admin_ops.declare("q"), {"op": "declare", "queue": "q"}),
        (admin_ops.declare("q", lease_s=5), {"op": "declare", "queue": "q", "lease_s": 5}),
        (ops.stats(), {"op": "stats"}),
        (ops.stats("q"), {"op": "stats", "queue": "q"}),
        (ops.queues(), {"op": "queues"}),
    ],
)
def test_none_fields_are_not_sent(request_: Request[Any], fields: dict[str, Any]) -> None:
    assert request_.fields == fields


def test_get_carries_its_wait_for_client_timeouts() -> None:
    assert ops.get("q", wait_s=2.5).wait_s == 2.5
    assert ops.get("q").wait_s == 0.0
    assert ops.ack("1.1").wait_s == 0.0


def _reply(name: str) -> dict[str, Any]:
    return check_reply(vector(name)["meaning"])


def test_parse_replies_from_vectors() -> None:
    assert ops.ping().parse(_reply("ping reply")) is None
    assert ops.publish("orders", b"m").parse(_reply("pub reply")) == 1
    (batch,) = ops.publish_batches("orders", [b"a", b"b"], 1000, 1 << 20)
    assert batch.parse(_reply("mpub reply")) == [2, 3]
    (msg,) = ops.get("orders").parse(_reply("get reply"))
    assert msg.receipt == "1.1" and msg.body == b"margherita"
    assert ops.get("orders").parse(_reply("get reply, empty")) == []
    result = ops.ack_batch(["1.1", "2.1"]).parse(_reply("batch ack reply"))
    assert result == AckResult(1, (AckFailure("2.1", "LEASE_LOST", "lease 2.1 is no longer held: message 2 "
                                                               "was acked or removed"),))
    assert ops.auth("alice", "s").parse(_reply("auth reply")) == "alice"
    lease_s = ops.touch("3.1").parse(_reply("touch reply"))
    assert lease_s == 60.0 and isinstance(lease_s, float)


def test_parse_declare_queues_stats() -> None:
    settings = {"queue": "q", "retention_s": 60, "lease_s": 5}
    assert admin_ops.declare("q").parse({"rid": 1, "ok": True, **settings}) == settings
    assert ops.queues().parse({"rid": 1, "ok": True, "queues": ["a", "b"]}) == ["a", "b"]
    stats = {"server": {"version": "1"}, "queues": {"q": {"ready": 0}}}
    assert ops.stats().parse({"rid": 1, "ok": True, **stats}) == stats


def test_error_reply_raises_its_typed_error() -> None:
    with pytest.raises(LeaseLost) as info:
        check_reply(vector("error reply")["meaning"])
    assert info.value.fatal is False
    with pytest.raises(BadRequest):
        check_reply({"rid": 1, "ok": False, "code": "BAD_REQUEST", "message": "m", "fatal": False})


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (ops.publish("q", b""), {"ok": True}),
        (ops.publish("q", b""), {"ok": True, "msg_id": "1"}),
        (ops.publish("q", b""), {"ok": True, "msg_id": True}),
        (ops.publish_batches("q", [b"a", b"b"], 10, 1 << 20)[0], {"ok": True, "msg_ids": [1]}),
        (ops.publish_batches("q", [b"a"], 10, 1 << 20)[0], {"ok": True, "msg_ids": ["1"]}),
        (ops.get("q"), {"ok": True, "msgs": None}),
        (ops.get("q"), {"ok": True, "msgs": [{"receipt": "1.1"}]}),
        (ops.touch("1.1"), {"ok": True, "lease_s": "60"}),
        (ops.ack_batch(["1.1"]), {"ok": True}),
        (ops.ack_batch(["1.1"]), {"ok": True, "acked": "1", "failed": []}),
        (ops.ack_batch(["1.1"]), {"ok": True, "acked": 1, "failed": None}),
        (ops.ack_batch(["1.1"]), {"ok": True, "acked": 0, "failed": ["1.1"]}),
        (ops.ack_batch(["1.1"]), {"ok": True, "acked": 0, "failed": [{"receipt": "1.1", "code": 7}]}),
        (ops.ack_batch(["1.1", "2.1"]), {"ok": True, "acked": 1, "failed": []}),  # one unaccounted for
        (ops.ack_batch(["1.1"]), {"ok": True, "acked": -1, "failed": [
            {"receipt": "1.1", "code": "LEASE_LOST", "message": ""},
            {"receipt": "1.1", "code": "LEASE_LOST", "message": ""}]}),
        (ops.queues(), {"ok": True, "queues": [1]}),
        (ops.stats(), {"ok": True, "server": {}}),
    ],
)
def test_malformed_replies_are_protocol_errors(request_: Request[Any], reply: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        request_.parse(check_reply(reply))


@pytest.mark.parametrize("reply", [{"rid": 1}, {"rid": 1, "ok": 1}, {"rid": 1, "ok": None}])
def test_reply_without_boolean_ok_is_a_protocol_error(reply: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        check_reply(reply)


def test_bodies_must_be_bytes_or_str() -> None:
    with pytest.raises(TypeError):
        ops.publish("q", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ops.ack(42)  # type: ignore[arg-type]


def test_batches_split_by_count_in_order() -> None:
    bodies = [str(i) for i in range(25)]
    batches = ops.publish_batches("q", bodies, 10, 1 << 20)
    assert [len(b.fields["bodies"]) for b in batches] == [10, 10, 5]
    assert [body for b in batches for body in b.fields["bodies"]] == [s.encode() for s in bodies]
    assert all(b.fields["op"] == "mpub" and b.fields["queue"] == "q" for b in batches)


def test_batches_split_by_size_and_every_frame_fits() -> None:
    limit = 4096
    bodies = [bytes([i]) * 1000 for i in range(10)]
    batches = ops.publish_batches("orders", bodies, 1000, limit)
    assert len(batches) > 1
    assert [body for b in batches for body in b.fields["bodies"]] == bodies
    for b in batches:
        encode_frame(b.to_wire(2**64 - 1), max_frame_bytes=limit)  # would raise if too big


def test_a_body_too_large_for_any_frame_fails_before_sending() -> None:
    with pytest.raises(FrameTooLarge) as info:
        ops.publish_batches("q", [b"ok", b"x" * 5000], 1000, 4096)
    assert info.value.fatal is False


def test_no_bodies_no_batches() -> None:
    assert ops.publish_batches("q", [], 1000, 1 << 20) == []


@pytest.mark.parametrize("batch_size", [0, -1, 10_001])
def test_batch_size_bounds(batch_size: int) -> None:
    with pytest.raises(ValueError):
        ops.publish_batches("q", [b"a"], batch_size, 1 << 20)


def test_batch_size_edges_are_accepted() -> None:
    assert len(ops.publish_batches("q", [b"a"] * 3, 1, 1 << 20)) == 3
    assert len(ops.publish_batches("q", [b""] * 10_001, 10_000, 1 << 20)) == 2


def test_ack_batches_split_by_count_in_order() -> None:
    receipts = [f"{i}.1" for i in range(25)]
    batches = ops.ack_batches(receipts, 1 << 20, batch_size=10)
    assert [len(b.fields["receipts"]) for b in batches] == [10, 10, 5]
    assert [r for b in batches for r in b.fields["receipts"]] == receipts
    assert all(list(b.fields) == ["op", "receipts"] and b.fields["op"] == "ack" for b in batches)


def test_ack_batches_hold_at_most_10_000_receipts() -> None:
    batches = ops.ack_batches([f"{i}.1" for i in range(20_001)], 1 << 30)
    assert [len(b.fields["receipts"]) for b in batches] == [10_000, 10_000, 1]


def test_ack_batches_split_by_size_and_every_frame_fits() -> None:
    limit = 1024
    receipts = [f"{i}.{i}" * 4 for i in range(1000, 1200)]
    batches = ops.ack_batches(receipts, limit)
    assert len(batches) > 1
    assert [r for b in batches for r in b.fields["receipts"]] == receipts
    for b in batches:
        encode_frame(b.to_wire(2**64 - 1), max_frame_bytes=limit)  # would raise if too big


def test_ack_batches_take_messages_and_nothing_gives_no_request() -> None:
    assert ops.ack_batches([MSG, "4.2"], 1 << 20)[0].fields["receipts"] == ["3.1", "4.2"]
    assert ops.ack_batches([], 1 << 20) == []
    with pytest.raises(TypeError):
        ops.ack_batches([42], 1 << 20)  # type: ignore[list-item]


@pytest.mark.parametrize("batch_size", [0, 10_001])
def test_ack_batch_size_bounds(batch_size: int) -> None:
    with pytest.raises(ValueError):
        ops.ack_batches(["1.1"], 1 << 20, batch_size)
