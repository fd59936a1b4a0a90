"""Message headers in the codec: read from a binary map and from `h.<name>=<value>` options,
checked against the limits of protocol.md 7 at their edges, and printed in text replies in the
form PUB reads back."""

from __future__ import annotations

from typing import Any

import pytest

from mq.codec.binary import command_from_map
from mq.codec.commands import Fanout, Publish, PublishMany, Rejected
from mq.codec.replies import Explanation, LogEvents, Messages, Peeked
from mq.codec.text import parse_line
from mq.codec.text_lines import format_event
from mq.errors import Code, MQError
from mq.limits import (
    MAX_HEADER_KEY_BYTES,
    MAX_HEADER_VALUE_BYTES,
    MAX_HEADERS,
    MAX_HEADERS_BYTES,
)

T0 = 1_800_000_000.0


def pub(headers: object) -> Publish | Rejected:
    decoded = command_from_map({"op": "pub", "rid": 1, "queue": "q", "body": b"x",
                                "headers": headers})
    assert isinstance(decoded, (Publish, Rejected))
    return decoded


def refusal(headers: object) -> str:
    decoded = pub(headers)
    assert isinstance(decoded, Rejected), decoded
    assert decoded.error.code is Code.BAD_REQUEST and decoded.rid == 1
    return decoded.error.message


def test_a_binary_publish_carries_its_headers_and_an_empty_map_is_none() -> None:
    headers = {"content-type": "application/json", "traceparent": "00-4bf92f-00f067-01"}
    assert pub(headers) == Publish("q", b"x", None, 1, headers=headers)
    assert pub({}) == pub(None) == Publish("q", b"x", None, 1)
    fanout = command_from_map({"op": "fanout", "topic": "t", "body": b"x", "headers": {"a": ""}})
    assert fanout == Fanout("t", b"x", headers={"a": ""})


def test_header_count_is_bounded() -> None:
    at_limit = {f"h{i}": "" for i in range(MAX_HEADERS)}
    assert isinstance(pub(at_limit), Publish)
    assert f"at most {MAX_HEADERS} headers" in refusal({**at_limit, "one-more": ""})


def test_header_names_are_bounded_and_use_the_characters_of_queue_names() -> None:
    assert isinstance(pub({"k" * MAX_HEADER_KEY_BYTES: "v"}), Publish)
    assert isinstance(pub({"A-z_0.9:x": "v"}), Publish)
    for bad in ("k" * (MAX_HEADER_KEY_BYTES + 1), "", "a b", "a=b", "ü"):
        assert "header name" in refusal({bad: "v"})


def test_header_values_are_bounded_strings() -> None:
    assert isinstance(pub({"v": "é" * (MAX_HEADER_VALUE_BYTES // 2)}), Publish)  # 2 bytes each
    assert f"at most {MAX_HEADER_VALUE_BYTES} bytes" in refusal(
        {"v": "x" * (MAX_HEADER_VALUE_BYTES + 1)})
    assert "must be a str, got int" in refusal({"v": 1})
    assert "must be a str, got bytes" in refusal({"v": b"x"})
    assert "must be a map of str to str" in refusal(["v", "x"])


def test_all_headers_together_are_bounded() -> None:
    value = "x" * (MAX_HEADERS_BYTES // 2 - 2)  # two names of 2 characters: exactly the limit
    assert isinstance(pub({"a1": value, "a2": value}), Publish)
    assert f"at most {MAX_HEADERS_BYTES} bytes" in refusal({"a1": value, "a2": value + "x"})


def test_mpub_carries_one_map_or_nil_per_body() -> None:
    decoded = command_from_map({"op": "mpub", "queue": "q", "bodies": [b"a", b"b"],
                                "headers": [{"n": "1"}, None]})
    assert decoded == PublishMany("q", (b"a", b"b"), headers=({"n": "1"}, None))
    wrong = command_from_map({"op": "mpub", "queue": "q", "bodies": [b"a", b"b"],
                              "headers": [{"n": "1"}]})
    assert isinstance(wrong, Rejected)
    assert "one map (or nil) per body: 2 bodies, 1 headers" in wrong.error.message
    not_a_list = command_from_map({"op": "mpub", "queue": "q", "bodies": [b"a"],
                                   "headers": {"n": "1"}})
    assert isinstance(not_a_list, Rejected) and "must be a list" in not_a_list.error.message


# --- text mode ------------------------------------------------------------------------------


def test_pub_reads_headers_as_options_escaped_or_quoted() -> None:
    cmd = parse_line(b"PUB q key=k h.content-type=text/plain h.note='two words' "
                     b"h.tab=a\\tb h.empty= margherita, table 4")
    assert cmd == Publish("q", b"margherita, table 4", "k", headers={
        "content-type": "text/plain", "note": "two words", "tab": "a\tb", "empty": ""})
    assert parse_line(b"FANOUT t h.a=1 -- h.b=2") == Fanout("t", b"h.b=2", headers={"a": "1"})


@pytest.mark.parametrize(("line", "says"), [
    (b"PUB q h.a=1 h.a=2 x", "header 'a' is given twice"),
    (b"PUB q h.a b=1 x", None),  # `h.a` is no header: the body is the rest
    (b"PUB q h.=1 x", "header name '' is invalid"),
    (b"PUB q h.a=\\xff x", "a header value must be UTF-8 text"),
    (b"PUB q h.a=1", "usage: PUB"),  # options with nothing after them are no body
])
def test_pub_refuses_headers_it_cannot_read(line: bytes, says: str | None) -> None:
    if says is None:
        cmd = parse_line(line)
        assert isinstance(cmd, Publish) and cmd.body == b"h.a b=1 x" and cmd.headers is None
        return
    with pytest.raises(MQError) as refused:
        parse_line(line)
    assert refused.value.code is Code.BAD_REQUEST and says in refused.value.message


def wire_message(body: bytes, headers: dict[str, str] | None) -> dict[str, Any]:
    m: dict[str, Any] = {"receipt": "1.1", "msg_id": 1, "queue": "q", "deliveries": 1,
                         "body": body, "key": None, "published_at": T0, "priority": 0}
    if headers is not None:
        m["headers"] = headers
    return m


@pytest.mark.parametrize(("body", "headers", "shown"), [
    (b"plain", None, b"MSG 1.1 q 1 plain\r\n"),
    (b"hi there", {"a": "x y", "b": "", "c": "it's"},
     b"MSG 1.1 q 1 h.a='x y' h.b='' h.c=it\\x27s -- hi there\r\n"),
    (b"h.a=1 looks like a header", None, b"MSG 1.1 q 1 -- h.a=1 looks like a header\r\n"),
    (b"-- dashes", None, b"MSG 1.1 q 1 -- -- dashes\r\n"),
])
def test_a_msg_line_reads_back_as_the_pub_that_made_it(body: bytes, headers: dict[str, str] | None,
                                                      shown: bytes) -> None:
    """What a MSG line shows after the deliveries, PUB takes as the same headers and the same
    body (a body that starts like a header gets a `--` before it)."""
    line = Messages([wire_message(body, headers)]).text()
    assert line == shown
    typed_back = parse_line(b"PUB q " + line.removesuffix(b"\r\n").split(b" ", 4)[4])
    assert isinstance(typed_back, Publish)
    assert (typed_back.body, typed_back.headers) == (body, headers)


def test_peek_history_monitor_and_explain_lines_show_headers_as_h_fields() -> None:
    headers = {"traceparent": "00-ab-cd-01", "note": "two words"}
    shown = "h.traceparent=00-ab-cd-01 h.note='two words'"
    peeked = {"msg_id": 1, "queue": "q", "deliveries": 0, "body": b"x", "key": None,
              "priority": 0, "published_at": T0, "last_error": None, "headers": headers}
    assert Peeked([peeked]).text() == (
        f"#1 deliveries=0 priority=0 {shown} body=x\r\n+OK 1 messages\r\n".encode())
    event = {"at": T0, "event": "published", "queue": "q", "size": 1, "headers": headers}
    assert LogEvents(1, [event]).text().split(b"\r\n")[0].endswith(
        f"published queue=q size=1 {shown}".encode())
    assert format_event({**event, "msg_id": 1, "key": None}).endswith(f"published size=1 {shown}")
    explained = Explanation({"msg_id": 1, "state": "ready", "why": "ready", "headers": headers})
    assert f"headers: {shown}\r\n".encode() in explained.text()
