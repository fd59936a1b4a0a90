"""The frame codec against the shared vectors, chunking, limits and garbage."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_vectors import load_vectors

from mq_client.codec import MAX_FRAME_BYTES_CEILING, FrameDecoder, decode_payload, encode_frame
from mq_client.errors import FrameTooLarge, ProtocolError

VECTORS = load_vectors()
IDS = [v["name"] for v in VECTORS]


def _frame(obj: Any) -> bytes:
    payload: bytes = msgpack.packb(obj, use_bin_type=True)
    return len(payload).to_bytes(4, "big") + payload


def test_vectors_file_is_not_empty() -> None:
    assert len(VECTORS) >= 10


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_encode_matches_vector(v: dict[str, Any]) -> None:
    assert encode_frame(v["meaning"]) == v["frame"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_decode_matches_vector(v: dict[str, Any]) -> None:
    assert FrameDecoder().feed(v["frame"]) == [v["meaning"]]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_decode_keeps_bin_as_bytes_and_str_as_str(v: dict[str, Any]) -> None:
    (decoded,) = FrameDecoder().feed(v["frame"])
    assert all(isinstance(k, str) for k in decoded)
    if "body" in v["meaning"]:
        assert type(decoded["body"]) is bytes


def test_decoder_fed_byte_by_byte_yields_every_vector_in_order() -> None:
    stream = b"".join(v["frame"] for v in VECTORS)
    decoder = FrameDecoder()
    out: list[dict[str, Any]] = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i : i + 1]))
    assert out == [v["meaning"] for v in VECTORS]
    assert decoder.buffered_bytes == 0


def test_decoder_fed_everything_at_once() -> None:
    stream = b"".join(v["frame"] for v in VECTORS)
    assert FrameDecoder().feed(stream) == [v["meaning"] for v in VECTORS]


def test_decoder_waits_for_the_rest_of_a_frame() -> None:
    frame = VECTORS[0]["frame"]
    decoder = FrameDecoder()
    assert decoder.feed(frame[:3]) == []
    assert decoder.feed(frame[3:-1]) == []
    assert decoder.buffered_bytes == len(frame) - 1
    assert decoder.feed(frame[-1:]) == [VECTORS[0]["meaning"]]


def test_frame_at_the_limit_is_accepted() -> None:
    frame = _frame({"b": b"x" * 100})
    size = len(frame) - 4
    assert FrameDecoder(max_frame_bytes=size).feed(frame) == [{"b": b"x" * 100}]


def test_frame_above_the_limit_is_refused_from_the_prefix_alone() -> None:
    frame = _frame({"b": b"x" * 100})
    size = len(frame) - 4
    decoder = FrameDecoder(max_frame_bytes=size - 1)
    with pytest.raises(ProtocolError, match="above max_frame_bytes"):
        decoder.feed(frame[:4])  # no payload byte has arrived yet
    with pytest.raises(ProtocolError):
        decoder.feed(b"")  # the stream is out of step for good


def test_prefix_of_2_gib_is_refused_by_default() -> None:
    with pytest.raises(ProtocolError, match="above max_frame_bytes"):
        FrameDecoder().feed(b"\x80\x00\x00\x00")


def test_default_limit_is_the_protocol_ceiling() -> None:
    assert FrameDecoder().max_frame_bytes == MAX_FRAME_BYTES_CEILING == 64 * 1024 * 1024


def test_zero_length_frame_is_invalid() -> None:
    with pytest.raises(ProtocolError, match="length 0"):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_bytes=0)


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb([1, 2]),  # not a map
        msgpack.packb("ping"),
        msgpack.packb({"op": "ping"}) + b"\xc0",  # trailing bytes
        b"\xc1",  # never-used msgpack byte
        b"\x82\xa2op",  # truncated map
        msgpack.packb({1: 2}),  # non-str key
        msgpack.packb({b"op": "ping"}, use_bin_type=True),  # bin key
        b"\x81\xa1k\xa2\xff\xfe",  # invalid UTF-8 in a str
        msgpack.packb({"t": msgpack.ExtType(5, b"x")}),  # extension types are not protocol
        b"\x81\x91\x01\x01",  # an array as a map key (unhashable)
    ],
)
def test_garbage_payload_raises_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_payload(payload)


def test_decoder_stays_in_step_after_a_bad_payload() -> None:
    bad = len(b"\xc1").to_bytes(4, "big") + b"\xc1"
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(bad + VECTORS[0]["frame"])
    assert decoder.feed(b"") == [VECTORS[0]["meaning"]]


def test_good_frames_before_a_bad_one_are_not_lost() -> None:
    bad = len(b"\xc1").to_bytes(4, "big") + b"\xc1"
    decoder = FrameDecoder()
    assert decoder.feed(VECTORS[0]["frame"] + bad + VECTORS[1]["frame"]) == [VECTORS[0]["meaning"]]
    with pytest.raises(ProtocolError):
        decoder.feed(b"")
    assert decoder.feed(b"") == [VECTORS[1]["meaning"]]


def test_good_frames_before_a_bad_prefix_are_not_lost() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(VECTORS[0]["frame"] + b"\x00\x00\x00\x00") == [VECTORS[0]["meaning"]]
    with pytest.raises(ProtocolError):
        decoder.feed(b"")


def test_encode_refuses_a_payload_above_the_limit_without_killing_anything() -> None:
    with pytest.raises(FrameTooLarge) as info:
        encode_frame({"body": b"x" * 2000}, max_frame_bytes=1024)
    assert info.value.fatal is False


def test_encode_accepts_a_payload_at_the_limit() -> None:
    frame = encode_frame({"body": b"x" * 100})
    assert encode_frame({"body": b"x" * 100}, max_frame_bytes=len(frame) - 4) == frame


def test_encode_sends_bytes_as_bin_and_str_as_str() -> None:
    frame = encode_frame({"b": b"a", "s": "a"})
    assert frame[4:] == b"\x82\xa1b\xc4\x01a\xa1s\xa1a"


@settings(max_examples=500)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_only_yield_maps_or_protocol_errors(data: bytes, chunk: int) -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    for i in range(0, len(data), chunk):
        try:
            frames = decoder.feed(data[i : i + chunk])
        except ProtocolError:
            continue
        assert all(isinstance(f, dict) and all(isinstance(k, str) for k in f) for f in frames)
    assert decoder.buffered_bytes <= len(data)


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_payload_behind_a_valid_prefix(payload: bytes) -> None:
    decoder = FrameDecoder()
    try:
        frames = decoder.feed(len(payload).to_bytes(4, "big") + payload)
    except ProtocolError:
        assert decoder.buffered_bytes == 0  # the bad frame was consumed, the stream is in step
        return
    assert len(frames) == 1 and isinstance(frames[0], dict)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.lists(st.dictionaries(st.text(max_size=10), _values, max_size=5), max_size=5), st.integers(1, 50))
def test_round_trip_of_arbitrary_maps(maps: list[dict[str, Any]], chunk: int) -> None:
    stream = b"".join(encode_frame(m) for m in maps)
    decoder = FrameDecoder()
    out: list[dict[str, Any]] = []
    for i in range(0, len(stream), chunk):
        out.extend(decoder.feed(stream[i : i + chunk]))
    assert out == maps
