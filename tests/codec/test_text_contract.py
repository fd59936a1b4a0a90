"""Text mode as protocol.md 3.2 writes it, no looser: numbers in ASCII decimal, options known by
name, a body only where one was typed, the key limit of binary mode, and replies in the
documented shapes (seconds in the shortest decimal, points in time as UTC clocks)."""

from __future__ import annotations

import re

import pytest

from mq.codec.binary import command_from_map
from mq.codec.commands import REGISTRY, Get, Peek, Publish, Rejected
from mq.codec.replies import Copies, Declared, Explanation, LogEvents, Statistics, Touched
from mq.codec.text import TextDecoder
from mq.errors import Code


def line(text: str) -> object:
    [decoded] = TextDecoder(1 << 16).feed(text.encode() + b"\n")
    return decoded


def refusal(text: str) -> str:
    decoded = line(text)
    assert isinstance(decoded, Rejected) and decoded.error.code is Code.BAD_REQUEST, decoded
    return decoded.error.message


@pytest.mark.parametrize("seconds", ["1_0", "1e1", "+5", "-5", ".5", "5.", "inf", "nan", "0x10",
                                     "\u0661", "1\u0660", " 5\u00a0"])
def test_seconds_are_ascii_decimal_only(seconds: str) -> None:
    assert "lease_s must be a number of seconds" in refusal(f"GET q {seconds}")


@pytest.mark.parametrize("count", ["1_0", "1e1", "+5", "2.0", "\u0661", "\uff15"])
def test_integers_are_ascii_digits_only(count: str) -> None:
    assert "count must be an integer" in refusal(f"PEEK q {count}")


def test_tokens_are_separated_by_spaces_and_tabs_only() -> None:
    assert line("GET\tq \t 30\t") == Get("q", 30.0)
    assert "queue name 'q\\xa030' is invalid" in refusal("GET q\u00a030")
    assert "queue name 'q\\u300030' is invalid" in refusal("GET q\u300030")


def test_decimal_numbers_are_read() -> None:
    assert line("GET q 30 0.5") == Get("q", 30.0, 0.5)
    assert line("GET q 007") == Get("q", 7.0)
    assert line("PEEK q 12") == Peek("q", 12)


def test_options_without_a_body_are_no_body() -> None:
    assert "usage: PUB" in refusal("PUB q key=k")
    assert "usage: PUB" in refusal("PUB q priority=3")
    assert line("PUB q key=k ") == Publish("q", b"", "k")
    assert line("PUB q key=k --") == Publish("q", b"", "k")


def test_an_unknown_option_is_refused_with_the_known_ones_and_the_way_out() -> None:
    message = refusal("PUB orders delay=60 margherita")
    assert "unknown option 'delay'" in message
    for known in ("key=", "priority=", "delay_s=", "not_before=", "ttl_s=", "dedup="):
        assert known in message
    assert "PUB <queue> -- delay=" in message
    assert "unknown option 'Key'" in refusal("FANOUT t Key=k body")
    assert "unknown option 'x'" in refusal("PUB q key=k x=1 body")
    assert line("PUB orders -- delay=60 margherita") == Publish("orders",
                                                                b"delay=60 margherita")


def test_what_does_not_look_like_an_option_is_the_body() -> None:
    assert line("PUB q 1+1=2") == Publish("q", b"1+1=2")
    assert line("PUB q =x") == Publish("q", b"=x")
    assert line("PUB q https://x/?a=b") == Publish("q", b"https://x/?a=b")


def test_the_key_limit_is_the_same_in_both_modes() -> None:
    assert line("PUB q key=" + "k" * 256 + " x") == Publish("q", b"x", "k" * 256)
    assert "key must be a string of at most 256 bytes" in refusal(
        "PUB q key=" + "\u00e9" * 129 + " x")
    assert "at most 256 bytes" in refusal("FANOUT t key=" + "k" * 257 + " x")
    binary = command_from_map({"op": "pub", "queue": "q", "body": b"x", "key": "k" * 257})
    assert isinstance(binary, Rejected) and "at most 256 bytes" in binary.error.message


@pytest.mark.parametrize("request_map", [
    {"op": "pub", "queue": "q", "body": b"x", "key": "a\x00b"},
    {"op": "fanout", "topic": "t", "body": b"x", "key": "\x00"},
    {"op": "pub", "queue": "q", "body": b"x", "dedup_id": "d\x00"},
    {"op": "nack", "receipt": "1.1", "delay_s": 0, "error": "boom\x00"},
])
def test_text_the_log_keeps_as_text_holds_no_nul(request_map: dict[str, object]) -> None:
    decoded = command_from_map(request_map)
    assert isinstance(decoded, Rejected) and decoded.error.code is Code.BAD_REQUEST
    assert "must not hold a NUL character" in decoded.error.message
    assert "must not hold a NUL character" in refusal("PUB q key=a\x00b x")
    assert line("PUB q key=a\x01b x") == Publish("q", b"x", "a\x01b")  # other controls are fine


def test_fanout_help_shows_the_end_of_options() -> None:
    help_lines = REGISTRY.help_lines()
    [fanout] = [h for h in help_lines if h.startswith("FANOUT ")]
    assert fanout.startswith("FANOUT <topic> [option=V ...] [--] <body>  publish")
    summary_at = {re.search(r"  +(?=\S)", h).end() for h in help_lines}  # type: ignore[union-attr]
    assert len(summary_at) == 1, help_lines


def test_fanout_to_an_unbound_topic_has_the_documented_shape() -> None:
    assert Copies({}).text() == b"+OK 0 copies:\r\n"
    assert Copies({"a": 1, "b": 2}).text() == b"+OK 2 copies: a=1 b=2\r\n"


def test_seconds_are_printed_in_the_shortest_decimal() -> None:
    assert Touched(0.5).text() == b"+OK 0.5\r\n"
    assert Declared("q", 31_536_000.0, 30.0, 0, None, 0.25).text() == (
        b"+OK q retention_s=31536000 lease_s=30 max_deliveries=0 dead_letter=- "
        b"dedup_window_s=0.25\r\n")
    queue = dict.fromkeys(["ready", "delayed", "leased", "published", "acked", "expired",
                           "released", "dead_lettered", "dropped", "ttl_expired",
                           "deduplicated"], 0)
    table = Statistics({}, {"q": {**queue, "oldest_ready_s": 12.345}}).text().decode()
    assert table.splitlines()[1].endswith(" 12.345")


def test_points_in_time_are_utc_clocks_and_durations_decimal() -> None:
    at = 1_796_000_000.25
    events = [{"at": at, "event": "published", "queue": "q", "size": 3,
               "delay_until": at + 60, "expires_at": at + 3600}]
    assert LogEvents(1, events).text().decode().splitlines()[0] == (
        "2026-11-30T00:53:20.250Z published queue=q size=3 delay_until=2026-11-30T00:54:20.250Z"
        " expires_at=2026-11-30T01:53:20.250Z")
    facts = {"msg_id": 1, "state": "delayed", "ready_at": at, "expires_in_s": 1.5,
             "why": "delayed"}
    assert Explanation(facts).text().decode().splitlines()[2:4] == [
        "ready_at: 2026-11-30T00:53:20.250Z", "expires_in_s: 1.5"]
