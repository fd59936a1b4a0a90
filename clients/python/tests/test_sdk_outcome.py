"""What a call the connection dropped under says, sans-IO: whether sending it again is safe."""

from __future__ import annotations

import pickle

import pytest

from mq_client import ConnectionLost, OutcomeUnknown, admin_ops, ops
from mq_client.errors import clone_error
from mq_client.request import Request, outcome_unknown


def _requests(name: str) -> list[Request[object]]:
    made = {
        "publish": [ops.publish("q", b"x")],
        "publish with dedup_id": [ops.publish("q", b"x", dedup_id="order-7")],
        "publish_many": list(ops.publish_many("q", [b"a", b"b"]).split(1 << 20)),
        "fanout": [ops.fanout("t", b"x")],
        "get": [ops.get("q", wait_s=5)],
        "ack": [ops.ack("1.1")],
        "nack": [ops.nack("1.1", delay_s=1.0, error="ValueError")],
        "touch": [ops.touch("1.1")],
        "stats": [ops.stats()],
        "purge": [admin_ops.purge("q")],
        "redrive": [admin_ops.redrive("q.dlq")],
    }
    return made[name]  # type: ignore[return-value]


@pytest.mark.parametrize(("name", "safe"), [
    ("publish", False), ("publish with dedup_id", True), ("publish_many", False), ("fanout", False),
    ("get", True), ("ack", True), ("nack", True), ("touch", True), ("stats", True),
    ("purge", False), ("redrive", False),
])
def test_it_says_whether_the_call_may_be_sent_again(name: str, safe: bool) -> None:
    error = outcome_unknown(_requests(name), "the broker closed the connection")
    assert isinstance(error, ConnectionLost) and error.fatal
    assert error.safe_to_retry is safe
    assert error.message.startswith("the broker closed the connection after ")


def test_an_unsafe_publish_says_how_to_make_the_retry_safe() -> None:
    error = outcome_unknown(_requests("publish"), "connection lost: [Errno 104] Connection reset by peer")
    assert "pub went out, before its reply" in str(error)
    assert "may store it twice" in str(error) and "publish_dedup" in str(error)


def test_it_keeps_safe_to_retry_when_copied_or_pickled() -> None:
    error = OutcomeUnknown("dropped", safe_to_retry=True)
    for copy in (clone_error(error), pickle.loads(pickle.dumps(error))):
        assert isinstance(copy, OutcomeUnknown) and copy.safe_to_retry and copy.message == "dropped"
