"""Message values built from the wire."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from sdk_vectors import vector

from mq_client import Message
from mq_client.errors import LeaseLost, MQError, NotYourLease, ProtocolError
from mq_client.message import AckFailure, AckResult


def _wire(**changes: Any) -> dict[str, Any]:
    (m,) = vector("get reply")["meaning"]["msgs"]
    return {**m, **changes}


def test_from_get_reply_vector() -> None:
    msg = Message.from_wire(_wire())
    assert msg == Message(
        receipt="1.1",
        msg_id=1,
        queue="orders",
        deliveries=1,
        body=b"margherita",
        key=None,
        published_at=1796000000.25,
    )
    assert msg.text == "margherita"


def test_is_frozen_and_slotted() -> None:
    msg = Message.from_wire(_wire())
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.receipt = "2.1"  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")


def test_is_a_value_like_before() -> None:
    msg = Message.from_wire(_wire(key="k"))
    same = Message(receipt="1.1", msg_id=1, queue="orders", deliveries=1, body=b"margherita", key="k",
                   published_at=1796000000.25, priority=0)
    assert msg == same and hash(msg) == hash(same) and msg != Message.from_wire(_wire(key="j"))
    assert repr(msg).startswith("Message(receipt='1.1', msg_id=1, queue='orders', deliveries=1,")
    assert pickle.loads(pickle.dumps(msg)) == msg
    for attack in (lambda: setattr(msg, "extra", 1), lambda: delattr(msg, "body")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            attack()


def test_unpacks_and_replace_checks_what_it_is_given() -> None:
    receipt, msg_id, *_ = Message.from_wire(_wire())
    assert (receipt, msg_id) == ("1.1", 1)
    msg = Message.from_wire(_wire())
    assert msg._replace(deliveries=2).deliveries == 2
    with pytest.raises(ValueError, match="deliveries"):
        msg._replace(deliveries=0)


def test_key_and_int_timestamp() -> None:
    msg = Message.from_wire(_wire(key="store-7", published_at=1796000000))
    assert msg.key == "store-7"
    assert msg.published_at == 1796000000.0 and isinstance(msg.published_at, float)


@pytest.mark.parametrize(
    "changes",
    [
        {"receipt": None},
        {"receipt": 11},
        {"msg_id": "1"},
        {"msg_id": True},
        {"deliveries": 0},
        {"body": "margherita"},
        {"key": 7},
        {"published_at": "yesterday"},
        {"queue": None},
    ],
)
def test_malformed_wire_message_is_a_protocol_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        Message.from_wire(_wire(**changes))


def test_missing_field_is_a_protocol_error() -> None:
    wire = _wire()
    del wire["body"]
    with pytest.raises(ProtocolError, match="body"):
        Message.from_wire(wire)


def test_not_a_map_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        Message.from_wire(["1.1"])  # type: ignore[arg-type]


def test_error_text_does_not_dump_a_huge_body() -> None:
    with pytest.raises(ValueError) as info:
        Message("1.1", 1, "q", 0, b"x" * 1_000_000, None, 0.0)
    assert len(str(info.value)) < 300


def test_fast_and_full_checks_accept_the_same_values() -> None:
    class Receipt(str):
        pass

    msg = Message(Receipt("1.1"), 1, "q", 1, b"", "k", 5)
    assert msg.published_at == 5.0 and isinstance(msg.published_at, float)
    with pytest.raises(ValueError, match="msg_id"):
        Message("1.1", -1, "q", 1, b"", None, 0.0)
    with pytest.raises(ValueError, match="published_at"):
        Message("1.1", 1, "q", 1, b"", None, True)


def test_ack_failure_from_wire_and_its_typed_error() -> None:
    failure = AckFailure.from_wire({"receipt": "2.1", "code": "LEASE_LOST", "message": "gone"})
    assert failure == AckFailure("2.1", "LEASE_LOST", "gone")
    error = failure.error()
    assert isinstance(error, LeaseLost) and error.message == "gone" and not error.fatal
    assert isinstance(AckFailure("2.1", "NOT_YOUR_LEASE", "").error(), NotYourLease)
    assert type(AckFailure("2.1", "SOMETHING_NEW", "").error()) is MQError


@pytest.mark.parametrize(
    "wire", [["2.1"], {"receipt": "2.1", "code": "LEASE_LOST"}, {"receipt": 2, "code": "X", "message": ""}]
)
def test_malformed_ack_failure_is_a_protocol_error(wire: Any) -> None:
    with pytest.raises(ProtocolError):
        AckFailure.from_wire(wire)


def test_ack_results_combine_in_order() -> None:
    a = AckFailure("1.1", "LEASE_LOST", "")
    b = AckFailure("9.2", "NOT_YOUR_LEASE", "")
    combined = AckResult.combine([AckResult(3, (a,)), AckResult(0), AckResult(2, (b,))])
    assert combined == AckResult(5, (a, b))
    assert not combined.ok and AckResult(4).ok
    assert AckResult.combine([]) == AckResult(0, ())


@pytest.mark.parametrize(("acked", "failed"), [(-1, ()), (True, ()), (1, [AckFailure("1.1", "X", "")]), (1, ("1.1",))])
def test_ack_result_checks_its_fields(acked: Any, failed: Any) -> None:
    with pytest.raises(ValueError):
        AckResult(acked, failed)
