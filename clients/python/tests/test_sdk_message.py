"""Message values built from the wire."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sdk_vectors import vector

from mq_client import Message
from mq_client.errors import ProtocolError


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
