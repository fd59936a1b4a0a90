"""The session requests and values, sans-IO: hello, heartbeat, join, leave, quit, backoff."""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

import pytest

from mq_client import Session, ops
from mq_client.errors import NameTaken, NoSession, ProtocolError
from mq_client.request import Request, check_reply
from mq_client.retry import RECONNECT_BACKOFF

HELLO_REPLY = {"rid": 1, "ok": True, "session": "ab12", "heartbeat_s": 1, "dead_after_s": 3.0,
               "grace_s": 3, "resumed": False}


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (ops.hello("w1"), {"op": "hello", "rid": 5, "consumer": "w1"}),
        (ops.hello("w1", 0.5), {"op": "hello", "rid": 5, "consumer": "w1", "heartbeat_s": 0.5}),
        (ops.hello("w1", 0.5, "ab12"),
         {"op": "hello", "rid": 5, "consumer": "w1", "heartbeat_s": 0.5, "session": "ab12"}),
        (ops.heartbeat(), {"op": "heartbeat", "rid": 5}),
        (ops.join("q", "g"), {"op": "join", "rid": 5, "queue": "q", "group": "g"}),
        (ops.join("q", "g", 8), {"op": "join", "rid": 5, "queue": "q", "group": "g", "prefetch": 8}),
        (ops.leave("q"), {"op": "leave", "rid": 5, "queue": "q"}),
        (ops.quit(), {"op": "quit", "rid": 5}),
    ],
)
def test_session_requests(request_: Request[Any], wire: dict[str, Any]) -> None:
    assert request_.to_wire(5) == wire


def test_hello_reply_becomes_a_frozen_session_with_float_terms() -> None:
    session = ops.hello("w1").parse(check_reply(HELLO_REPLY))
    assert session == Session("ab12", "w1", 1.0, 3.0, 3.0, False)
    assert all(isinstance(v, float) for v in (session.heartbeat_s, session.dead_after_s, session.grace_s))
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.token = "other"  # type: ignore[misc]
    assert not hasattr(session, "__dict__")  # slotted


@pytest.mark.parametrize(
    "change",
    [{"session": None}, {"session": ""}, {"heartbeat_s": "1"}, {"heartbeat_s": 0}, {"dead_after_s": None},
     {"grace_s": -1}, {"resumed": 1}, {"resumed": None}, {"heartbeat_s": True}],
)
def test_malformed_hello_reply_is_a_protocol_error(change: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        ops.hello("w1").parse({**HELLO_REPLY, **change})


def test_join_reply_is_checked() -> None:
    reply = {"queue": "q", "group": "g", "consumer": "w1", "prefetch": 8, "members": 2}
    assert ops.join("q", "g", 8).parse({"rid": 1, "ok": True, **reply}) == reply
    for name, bad in [("members", "2"), ("prefetch", None), ("consumer", 1), ("group", None)]:
        with pytest.raises(ProtocolError):
            ops.join("q", "g").parse({"rid": 1, "ok": True, **reply, name: bad})


@pytest.mark.parametrize(("code", "cls"), [("NAME_TAKEN", NameTaken), ("NO_SESSION", NoSession)])
def test_session_errors_are_typed(code: str, cls: type[Exception]) -> None:
    with pytest.raises(cls):
        ops.join("q", "g").parse(check_reply({"rid": 1, "ok": False, "code": code, "message": "m",
                                                  "fatal": False}))


def test_backoff_doubles_from_start_to_cap() -> None:
    no_jitter = dataclasses.replace(RECONNECT_BACKOFF, random=lambda: 0.0)
    bounds = list(itertools.islice(no_jitter.delays(), 8))
    assert bounds == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert (RECONNECT_BACKOFF.first_s, RECONNECT_BACKOFF.cap_s) == (0.05, 2.0)


def test_backoff_has_full_jitter() -> None:
    rng = random.Random(7)
    delays = list(itertools.islice(dataclasses.replace(RECONNECT_BACKOFF, random=rng.random).delays(), 200))
    assert all(0.0 <= d <= 2.0 for d in delays)
    late = delays[10:]
    assert min(late) < 0.5 and max(late) > 1.5  # spread over [0, cap], not bunched at the bound
    assert len(set(late)) == len(late)
