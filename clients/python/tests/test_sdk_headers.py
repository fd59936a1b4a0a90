"""Headers and serializers in the SDK, sans-IO: requests byte-exact with the shared vectors,
messages read with their headers, and bodies turned into values only when asked."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from sdk_vectors import vector

from mq_client import JSON, MSGPACK, ContentTypeMismatch, Headers, Message, PeekedMessage, ops
from mq_client.codec import encode_frame
from mq_client.errors import ProtocolError
from mq_client.request import Request

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def matches(name: str, request: Request[Any], rid: int) -> None:
    v = vector(name)
    assert request.to_wire(rid) == v["meaning"]
    assert encode_frame(request.to_wire(rid)) == v["frame"]


def test_publish_and_mpub_with_headers_match_the_vectors() -> None:
    matches("pub request with headers", ops.publish("orders", b"{}", headers={
        "content-type": "application/json", "traceparent": TRACEPARENT}), 40)
    matches("pub request with headers", ops.publish("orders", JSON.encode({}), headers={
        "traceparent": TRACEPARENT}), 40)
    [batch] = ops.publish_batches("orders", [b"a", b"b"], 1000, 1 << 20, headers=[{"x-id": "a-1"}, None])
    matches("mpub request with headers", batch, 41)


def test_requests_without_headers_carry_no_headers_field() -> None:
    assert "headers" not in ops.publish("q", b"x", headers={}).fields
    assert "headers" not in ops.fanout("t", b"x").fields
    [batch] = ops.publish_batches("q", [b"a", b"b"], 10, 1 << 20, headers=[None, {}])
    assert "headers" not in batch.fields


def test_publish_many_wants_one_entry_of_headers_per_body() -> None:
    with pytest.raises(ValueError, match="zip"):
        ops.publish_batches("q", [b"a", b"b"], 10, 1 << 20, headers=[None])
    batches = ops.publish_batches("q", [b"a", b"b", b"c"], 2, 1 << 20, headers=[None, {"n": "2"}, {"n": "3"}])
    assert [b.fields["headers"] for b in batches] == [[None, {"n": "2"}], [{"n": "3"}]]


def test_headers_count_against_the_frame_budget() -> None:
    big = {"note": "x" * 2_000}
    batches = ops.publish_batches("q", [b"a"] * 4, 1000, 5_000, headers=[big] * 4)
    assert [len(b.fields["bodies"]) for b in batches] == [2, 2]


def test_a_delivered_message_has_its_headers_read_only() -> None:
    (m,) = vector("get reply with headers")["meaning"]["msgs"]
    msg = Message.from_wire(m)
    assert msg.headers == {"content-type": "application/json"} and msg.content_type == "application/json"
    assert isinstance(msg.headers, Headers) and not hasattr(msg.headers, "__setitem__")
    assert pickle.loads(pickle.dumps(msg)) == msg and hash(msg) == hash(Message.from_wire(m))
    plain = Message.from_wire(vector("get reply")["meaning"]["msgs"][0])
    assert plain.headers == {} and plain.content_type is None
    assert plain.headers is Message.from_wire({**m, "headers": None}).headers  # one shared empty map


@pytest.mark.parametrize("bad", [["a"], {"a": 1}, {1: "a"}, "a=b"])
def test_headers_that_are_no_map_of_str_are_a_protocol_error(bad: object) -> None:
    (m,) = vector("get reply with headers")["meaning"]["msgs"]
    with pytest.raises(ProtocolError, match="headers"):
        Message.from_wire({**m, "headers": bad})


def test_a_peeked_message_has_its_headers() -> None:
    peeked = PeekedMessage.from_wire({"msg_id": 1, "queue": "q", "deliveries": 0, "body": b"x", "key": None,
                                      "priority": 0, "published_at": 1.0, "headers": {"a": "b"}})
    assert peeked.headers == Headers({"a": "b"})
    assert PeekedMessage(1, "q", 0, b"x", None, 0, 1.0).headers == {}


def test_serializers_encode_when_told_and_decode_only_when_asked() -> None:
    job = {"n": 1, "name": "clé"}
    encoded = JSON.encode(job)
    assert (encoded.body, encoded.content_type) == ('{"n":1,"name":"clé"}'.encode(), "application/json")
    request = ops.publish("q", encoded)
    assert request.fields["headers"] == {"content-type": "application/json"}
    msg = Message("1.1", 1, "q", 1, request.fields["body"], None, 0.0, 0, request.fields["headers"])
    assert msg.body == encoded.body  # still bytes: nothing decoded on its own
    assert msg.decode(JSON) == job
    with pytest.raises(ContentTypeMismatch, match="'application/json', not 'application/msgpack'"):
        msg.decode(MSGPACK)
    packed = MSGPACK.encode({"raw": b"\x00\xff"})
    untyped = Message("2.1", 2, "q", 1, packed.body, None, 0.0)  # no content-type: trusted
    assert untyped.decode(MSGPACK) == {"raw": b"\x00\xff"}


def test_a_content_type_header_that_contradicts_the_body_is_refused() -> None:
    with pytest.raises(ValueError, match="content-type 'text/plain' but the body is 'application/json'"):
        ops.publish("q", JSON.encode(1), headers={"content-type": "text/plain"})
    same = ops.publish("q", JSON.encode(1), headers={"content-type": "application/json"})
    assert same.fields["headers"] == {"content-type": "application/json"}
