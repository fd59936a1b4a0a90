"""Binary framing without sockets: whole, split, pipelined, oversized and malformed frames."""

from __future__ import annotations

import struct

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from mq.codec.binary import BinaryDecoder, encode_frame
from mq.codec.commands import Ack, AckMany, Get, Ping, Publish, PublishMany, Rejected
from mq.codec.values import Receipt
from mq.errors import Code


def test_pipelined_frames_in_one_chunk() -> None:
    data = b"".join([
        encode_frame({"op": "pub", "rid": 1, "queue": "q", "body": b"a"}),
        encode_frame({"op": "mpub", "rid": 2, "queue": "q", "bodies": [b"b", "c"]}),
        encode_frame({"op": "get", "rid": 3, "queue": "q", "max": 5, "wait_s": 1}),
        encode_frame({"op": "ack", "rid": 4, "receipt": "12.3"}),
    ])
    assert BinaryDecoder(1024).feed(data) == [
        Publish("q", b"a", None, 1),
        PublishMany("q", (b"b", b"c"), 2),
        Get("q", None, 1.0, 5, 3),
        Ack(Receipt(12, 3), 4),
    ]


def test_frame_fed_one_byte_at_a_time() -> None:
    data = encode_frame({"op": "ping", "rid": 77})
    decoder = BinaryDecoder(1024)
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    assert out == [Ping(77)]
    assert decoder.buffered_bytes == 0


def test_prefix_above_limit_is_fatal_and_not_buffered() -> None:
    decoder = BinaryDecoder(1024)
    out = decoder.feed(struct.pack(">I", 1025) + b"x" * 100)
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert out[0].error.code is Code.FRAME_TOO_LARGE and out[0].error.fatal
    assert decoder.closed and decoder.buffered_bytes == 0
    assert decoder.feed(encode_frame({"op": "ping"})) == []


def test_prefix_above_limit_split_after_a_frame_is_refused_once_whole() -> None:
    """The prefix of a too large frame that comes in two pieces, the first behind a whole
    frame, is refused as soon as its four bytes are in, its payload never waited for."""
    decoder = BinaryDecoder(1024)
    prefix = struct.pack(">I", 5_000)
    assert decoder.feed(encode_frame({"op": "ping", "rid": 1}) + prefix[:2]) == [Ping(1)]
    assert decoder.buffered_bytes == 2
    [refused] = decoder.feed(prefix[2:] + b"x" * 10)
    assert isinstance(refused, Rejected) and refused.error.code is Code.FRAME_TOO_LARGE
    assert decoder.closed and decoder.buffered_bytes == 0


def test_a_frame_in_many_pieces_is_decoded_once_whole_and_the_next_goes_on() -> None:
    body = b"b" * 3_000
    data = encode_frame({"op": "pub", "rid": 1, "queue": "q", "body": body})
    data += encode_frame({"op": "ping", "rid": 2})
    decoder = BinaryDecoder(8_192)
    out = []
    for i in range(0, len(data), 700):
        out += decoder.feed(data[i : i + 700])
    assert out == [Publish("q", body, None, 1), Ping(2)]
    assert decoder.buffered_bytes == 0


def test_frame_at_limit_is_accepted() -> None:
    payload = {"op": "pub", "queue": "q", "body": b""}
    base = len(msgpack.packb(payload))
    payload["body"] = b"z" * (1024 - base - 1)  # bin8 header grows by one byte
    data = encode_frame(payload)
    assert len(data) - 4 <= 1024
    [command] = BinaryDecoder(len(data) - 4).feed(data)
    assert isinstance(command, Publish)


def test_malformed_payloads_are_rejected_but_the_stream_goes_on() -> None:
    decoder = BinaryDecoder(1024)
    out = decoder.feed(
        struct.pack(">I", 2) + b"\xc1\xc1"
        + struct.pack(">I", 0)
        + encode_frame({"op": "nope", "rid": 5})
        + encode_frame({"op": "ack", "rid": 6, "receipt": "x"})
        + encode_frame({"op": "ping", "rid": 7})
    )
    codes = [(item.rid, item.error.code) for item in out if isinstance(item, Rejected)]
    assert codes == [(None, Code.BAD_FRAME), (None, Code.BAD_FRAME), (5, Code.UNKNOWN_OP),
                     (6, Code.BAD_REQUEST)]
    assert out[-1] == Ping(7)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_only_yield_commands_or_protocol_errors(data: bytes, step: int) -> None:
    """Whatever arrives, in whatever pieces, the decoder returns commands or Rejected values
    carrying a protocol error code; it never raises and never buffers more than one frame."""
    decoder = BinaryDecoder(1024)
    for i in range(0, len(data), step):
        for item in decoder.feed(data[i : i + step]):
            if isinstance(item, Rejected):
                assert isinstance(item.error.code, Code)
        assert decoder.buffered_bytes <= 1024 + 4 + step


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["op", "rid", "queue", "body", "bodies", "receipt", "max",
                                        "lease_s", "wait_s", "delay_s", "key"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                                 st.floats(),
                                 st.text(max_size=20), st.binary(max_size=20),
                                 st.lists(st.binary(max_size=4), max_size=3)),
                       max_size=6))
def test_arbitrary_maps_never_escape_as_exceptions(m: dict[str, object]) -> None:
    for op in ("pub", "mpub", "get", "ack", "nack", "touch", "declare", "stats"):
        m2 = {**m, "op": op}
        BinaryDecoder(4096).feed(encode_frame(m2))


def test_truncated_frames_wait_for_more() -> None:
    data = encode_frame({"op": "pub", "queue": "q", "body": b"x" * 50})
    for cut in range(len(data)):
        assert BinaryDecoder(1024).feed(data[:cut]) == []


def test_a_request_map_has_string_keys_only() -> None:
    """protocol.md 2.1: one msgpack map with string keys; an int or bin key, at any depth, is
    BAD_FRAME like any other payload that is not a request."""
    for payload in ({"op": "ping", "rid": 1, 7: "x"}, {"op": "ping", "rid": 1, b"op": "x"},
                    {"op": "ack", "rid": 1, "receipts": [{1: 2}]}):
        packed = msgpack.packb(payload, use_bin_type=True)
        [rejected] = BinaryDecoder(1024).feed(struct.pack(">I", len(packed)) + packed)
        assert isinstance(rejected, Rejected) and (rejected.rid, rejected.error.code) == (
            None, Code.BAD_FRAME), rejected


def test_a_batch_ack_reads_each_receipt_as_a_receipt_of_its_own_would() -> None:
    """A batch of plain receipts is read in one go (fields.py); each comes out as the Receipt
    that parsing it alone gives, and a batch with one receipt that is not plain (a comma in it,
    digits of another script, not a str) is refused naming that receipt."""
    plain = ["1.1", "17.2", "007.3", f"{2**63 - 1}.{10**19}"]
    [batch] = BinaryDecoder(1024).feed(encode_frame({"op": "ack", "rid": 1, "receipts": plain}))
    assert isinstance(batch, AckMany)
    assert batch.receipts == tuple(map(Receipt.parse, plain))
    assert all(type(r) is Receipt for r in batch.receipts)
    for odd in ("1.1,2.2", "\u0663.1", 5):
        frame = encode_frame({"op": "ack", "rid": 2, "receipts": ["3.1", odd]})
        [rejected] = BinaryDecoder(1024).feed(frame)
        assert isinstance(rejected, Rejected) and rejected.error.code is Code.BAD_REQUEST
        assert repr(odd) in rejected.error.message
