"""The command registry: one declaration per command, from which both decoders and HELP come."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mq.codec.binary import command_from_map
from mq.codec.commands import (
    REGISTRY,
    AckMany,
    Bind,
    Declare,
    Get,
    Nack,
    Peek,
    Publish,
    Redrive,
    Rejected,
    Subscribe,
)
from mq.codec.fields import Body, QueueName
from mq.codec.options import PublishOptions
from mq.codec.registry import Registry, Spec
from mq.codec.text import TextDecoder
from mq.codec.values import Receipt
from mq.errors import Code
from mq.limits import DEFAULT_PEEK_COUNT, DEFAULT_PREFETCH, DEFAULT_REDRIVE_COUNT


def line(text: str) -> object:
    [decoded] = TextDecoder(1 << 16).feed(text.encode() + b"\n")
    return decoded


# The same request in both modes: the readers of each mode come from one declaration.
SAME_REQUEST = [
    ("GET q 5 2.5", {"op": "get", "queue": "q", "lease_s": 5, "wait_s": 2.5}),
    ("SUB q", {"op": "sub", "queue": "q"}),
    ("PEEK q", {"op": "peek", "queue": "q"}),
    ("REDRIVE q.dlq 5 q", {"op": "redrive", "queue": "q.dlq", "count": 5, "to": "q"}),
    ("NACK 3.2 1.5 it broke  badly", {"op": "nack", "receipt": "3.2", "delay_s": 1.5,
                                       "error": "it broke  badly"}),
    ("ACK 3.1 4.1", {"op": "ack", "receipts": ["3.1", "4.1"]}),
    ("DECLARE q lease_s=5 max_deliveries=3", {"op": "declare", "queue": "q", "lease_s": 5.0,
                                              "max_deliveries": 3}),
    ("UNBIND t q", {"op": "unbind", "topic": "t", "queue": "q"}),
    ("HELLO c 0.5 tok", {"op": "hello", "consumer": "c", "heartbeat_s": 0.5, "session": "tok"}),
    ("JOIN q g 7", {"op": "join", "queue": "q", "group": "g", "prefetch": 7}),
    ("EXPLAIN 9", {"op": "explain", "msg_id": 9}),
    ("STATS", {"op": "stats"}),
    ("HB", {"op": "heartbeat"}),
    ("PUB q key=k priority=3 dedup=d -- key=v body", {
        "op": "pub", "queue": "q", "body": b"key=v body", "key": "k", "priority": 3,
        "dedup_id": "d"}),
]


@pytest.mark.parametrize(("text", "request_map"), SAME_REQUEST, ids=[t for t, _ in SAME_REQUEST])
def test_both_modes_read_a_request_alike(text: str, request_map: dict[str, object]) -> None:
    assert line(text) == command_from_map(request_map)


def test_defaults_are_the_commands_own_in_both_modes() -> None:
    assert line("SUB q") == Subscribe("q", DEFAULT_PREFETCH)
    assert command_from_map({"op": "peek", "queue": "q", "count": None}) == Peek(
        "q", DEFAULT_PEEK_COUNT)
    assert line("REDRIVE q") == Redrive("q", DEFAULT_REDRIVE_COUNT)
    assert command_from_map({"op": "get", "queue": "q"}) == Get("q", None, 0.0, 1)


def test_special_syntaxes_are_declared_forms() -> None:
    assert line("ACK 1.1 2.1") == AckMany((Receipt(1, 1), Receipt(2, 1)))
    assert line("NACK 1.1") == Nack(Receipt(1, 1))
    assert line("UNBIND t q") == Bind("t", "q", unbind=True)
    assert line("DECLARE q dead_letter=x") == Declare("q", dead_letter="x")
    assert line("PUB q priority=2 --") == Publish("q", b"", None, None, PublishOptions(2))


def test_usage_errors_show_the_declared_usage() -> None:
    for text, usage in [("GET", "GET <queue> [lease_s] [wait_s]"), ("HB now", "HEARTBEAT"),
                        ("REDRIVE", "REDRIVE <dead-letter queue> [count] [to]"),
                        ("ACK", "ACK <receipt> [receipt ...]"),
                        ("NACK", "NACK <receipt> [delay_s] [error text]"),
                        ("DECLARE", "DECLARE <queue> [setting=V ...]"),
                        ("PUB q", "PUB <queue> [option=V ...] [--] <body>")]:
        rejected = line(text)
        assert isinstance(rejected, Rejected)
        assert (rejected.error.code, rejected.error.message) == (Code.BAD_REQUEST,
                                                                 f"usage: {usage}")


def test_help_lists_every_verb_and_each_is_understood() -> None:
    verbs = [h.split()[0] for h in REGISTRY.help_lines()]
    assert verbs[:3] == ["PING", "PUB", "FANOUT"] and verbs[-2:] == ["HELP", "QUIT"]
    for verb in verbs:
        decoded = line(verb)
        assert not (isinstance(decoded, Rejected) and decoded.error.code is Code.UNKNOWN_OP)


def test_binary_only_and_text_only_commands_stay_in_their_mode() -> None:
    assert isinstance(line("MPUB q a"), Rejected)
    rejected = command_from_map({"op": "help"})
    assert isinstance(rejected, Rejected) and rejected.error.code is Code.UNKNOWN_OP


@dataclass(frozen=True, slots=True)
class _BodyByPosition:
    SPEC = Spec("body", "BODY", args=("queue", "body"))

    queue: QueueName
    body: Body


@dataclass(frozen=True, slots=True)
class _SecondGet:
    SPEC = Spec("get", "FETCH")

    queue: QueueName


def test_a_declaration_the_decoders_cannot_serve_fails_at_import() -> None:
    with pytest.raises(TypeError, match="no text form"):
        Registry.of((_BodyByPosition,))
    with pytest.raises(TypeError, match="'get' is declared by Get and _SecondGet"):
        Registry.of((Get, _SecondGet))
