"""Text replies keep their framing whatever a client chose to write into a field: a CR LF in a
key, a nack error, a dedup id, a dead-letter reason or a holder never starts a line of its own
(protocol.md 3.1), so no client can forge `+OK` or `-ERR` lines in another's text session."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mq.codec.escape import quote_field, unescape_body
from mq.codec.replies import AckedMany, Explanation, LogEvents, Peeked
from mq.codec.text_lines import error_line, format_event, line
from mq.errors import Code, MQError

# One with spaces, one without (a value without a space was never quoted at all).
FORGERIES = ["x\r\n+OK forged\n-ERR BAD_REQUEST also\rMSG 1.1 q 1 y", "x\r\n+OK\r\n+PONG"]
forgeries = pytest.mark.parametrize("forged", FORGERIES, ids=["spaced", "tight"])


def physical_lines(text: bytes) -> list[bytes]:
    """What a reader that splits on LF (telnet, nc, a program) sees."""
    return text.removesuffix(b"\r\n").replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")


def assert_lines(text: bytes, expected: int) -> None:
    """`expected` lines, and only the last ends the reply (protocol.md 3)."""
    got = physical_lines(text)
    assert len(got) == expected, got
    assert [g.startswith((b"+", b"-ERR ", b"MSG ")) for g in got] == [False] * (expected - 1) + [
        True], got


@forgeries
def test_peek_prints_key_error_and_reason_on_the_message_line(forged: str) -> None:
    msg = {"msg_id": 7, "queue": "q.dlq", "deliveries": 3, "priority": 0, "key": forged,
           "body": forged.encode(), "last_error": forged, "dead_from": "q",
           "dead_reason": forged}
    assert_lines(Peeked([msg, msg]).text(), 3)


@forgeries
def test_explain_prints_every_fact_and_the_sentence_on_their_lines(forged: str) -> None:
    facts = {"msg_id": 7, "queue": "q", "state": "leased", "holder": forged,
             "last_error": forged, "why": f"ready for key {forged}"}
    assert_lines(Explanation(facts).text(), 6)


@forgeries
def test_history_prints_one_line_per_event(forged: str) -> None:
    events = [
        {"at": 1.0, "event": "published", "queue": "q", "key": forged, "dedup_id": forged},
        {"at": 2.0, "event": "leased", "delivery": 1, "holder": forged},
        {"at": 3.0, "event": "nacked", "error": forged},
        {"at": 4.0, "event": "dead-lettered", "queue": "q.dlq", "reason": forged},
    ]
    assert_lines(LogEvents(7, events).text(), 5)


@forgeries
def test_monitor_prints_one_line_per_event(forged: str) -> None:
    for extra in ({"key": forged}, {"error": forged}, {"holder": forged}, {"reason": forged}):
        event = {"at": 1.0, "queue": "q", "msg_id": 7, "event": "nacked", **extra}
        got = physical_lines(line(format_event(event)))
        assert len(got) == 1 and got[0].startswith(b"EVENT "), got


@forgeries
def test_error_texts_stay_on_their_line(forged: str) -> None:
    assert_lines(error_line(MQError(Code.BAD_REQUEST, forged)), 1)
    failed = [{"receipt": "1.1", "code": "LEASE_LOST", "message": forged}]
    assert_lines(AckedMany(0, failed).text(), 2)


def test_a_field_is_one_token_and_reads_back_like_a_body() -> None:
    assert quote_field("store-1") == "store-1"
    assert quote_field("") == "''"
    assert quote_field("it's broken") == "'it\\x27s broken'"
    assert quote_field("a\r\nb") == "a\\r\\nb"
    assert quote_field("a\u2028b\x85") == "a\\xe2\\x80\\xa8b\\xc2\\x85"


@given(st.text())
def test_every_field_value_round_trips(text: str) -> None:
    quoted = quote_field(text)
    assert re.fullmatch(r"[^\s']+|'[^']*'", quoted), quoted
    assert not any(ch in quoted for ch in "\r\n\x85\u2028\u2029")
    inner = quoted[1:-1] if quoted.startswith("'") else quoted
    assert unescape_body(inner.encode()) == text.encode()
