"""Text lines to commands and replies to text, without sockets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mq.codec.commands import Ack, Declare, Get, Nack, Ping, Publish, Rejected, Stats, Touch
from mq.codec.escape import escape_body, unescape_body
from mq.codec.replies import Messages
from mq.codec.sniff import Mode, sniff_mode
from mq.codec.text import TextDecoder
from mq.codec.values import Receipt
from mq.errors import Code


def feed(data: bytes, limit: int = 1024) -> list[object]:
    return list(TextDecoder(limit).feed(data))


def test_commands_parse() -> None:
    assert feed(
        b"PING\r\nPUB q hello world\r\nget q 5 2.5\nACK 3.1\nnack 3.2 10\nTOUCH 3.3\n"
        b"DECLARE q retention_s=60\nSTATS\n"
    ) == [
        Ping(), Publish("q", b"hello world"), Get("q", 5.0, 2.5), Ack(Receipt(3, 1)),
        Nack(Receipt(3, 2), 10.0), Touch(Receipt(3, 3)), Declare("q", 60.0, None), Stats(),
    ]


def test_body_keeps_spaces_and_may_be_empty() -> None:
    assert feed(b"PUB q   two  spaces \nPUB q \n") == [
        Publish("q", b"  two  spaces "), Publish("q", b"")
    ]


def test_partial_lines_wait_for_their_end() -> None:
    decoder = TextDecoder(1024)
    assert decoder.feed(b"PUB q hal") == []
    assert decoder.feed(b"f\r") == []
    assert decoder.feed(b"\n") == [Publish("q", b"half")]


def test_long_line_rejected_once_and_discarded_without_buffering() -> None:
    decoder = TextDecoder(64)
    out = decoder.feed(b"PUB q " + b"x" * 100)
    assert [r.error.code for r in out if isinstance(r, Rejected)] == [Code.LINE_TOO_LONG]
    assert decoder.buffered_bytes == 0
    assert decoder.feed(b"y" * 10_000) == []
    assert decoder.buffered_bytes == 0
    assert decoder.feed(b"zz\nPING\n") == [Ping()]


def test_errors_are_rejections_not_exceptions() -> None:
    out = feed(b"FOO\nGET\nACK 1\nGET q x\n")
    assert [r.error.code for r in out if isinstance(r, Rejected)] == [
        Code.UNKNOWN_OP, Code.BAD_REQUEST, Code.BAD_REQUEST, Code.BAD_REQUEST
    ]


@given(st.binary(max_size=300))
def test_escape_round_trips_every_body(body: bytes) -> None:
    text = escape_body(body)
    assert "\n" not in text and "\r" not in text
    assert unescape_body(text.encode("utf-8", errors="surrogateescape")) == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500), st.integers(min_value=1, max_value=50))
def test_arbitrary_bytes_never_raise(data: bytes, step: int) -> None:
    decoder = TextDecoder(128)
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
        assert decoder.buffered_bytes <= 128 + step


def test_get_reply_formats() -> None:
    msg = {"receipt": "4.2", "queue": "q", "deliveries": 2, "body": b"a\nb"}
    assert Messages([msg]).text() == b"MSG 4.2 q 2 a\\nb\r\n"
    assert Messages([]).text() == b"+EMPTY\r\n"


def test_sniffing_never_takes_a_frame_for_text() -> None:
    for first in range(0x00, 0x04):  # every frame below the 64 MiB ceiling
        assert sniff_mode(first) is Mode.BINARY
    for ch in b"PpGgAa\r\n\t ":
        assert sniff_mode(ch) is Mode.TEXT
    assert sniff_mode(0x80) is Mode.BINARY
