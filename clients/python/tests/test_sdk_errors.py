"""Error codes map to typed exceptions."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
from fake_broker import FakeBroker
from sdk_vectors import vector

from mq_client import AsyncClient, errors
from mq_client.errors import (
    BadFrame,
    BadRequest,
    ConnectionLost,
    FrameTooLarge,
    InternalError,
    LeaseLost,
    LineTooLong,
    MQError,
    NameTaken,
    NoSession,
    NotFound,
    NotYourLease,
    Overloaded,
    ProtocolError,
    Retryable,
    ShuttingDown,
    StoreFull,
    StoreUnavailable,
    UnknownOp,
    clone_error,
    error_class,
    error_from_reply,
)

WIRE_CODES = {
    "BAD_FRAME": BadFrame,
    "FRAME_TOO_LARGE": FrameTooLarge,
    "LINE_TOO_LONG": LineTooLong,
    "UNKNOWN_OP": UnknownOp,
    "BAD_REQUEST": BadRequest,
    "LEASE_LOST": LeaseLost,
    "NOT_YOUR_LEASE": NotYourLease,
    "NAME_TAKEN": NameTaken,
    "NO_SESSION": NoSession,
    "NOT_FOUND": NotFound,
    "SHUTTING_DOWN": ShuttingDown,
    "OVERLOADED": Overloaded,
    "STORE_FULL": StoreFull,
    "STORE_UNAVAILABLE": StoreUnavailable,
    "INTERNAL": InternalError,
}
RETRYABLE_CODES = {"OVERLOADED", "STORE_FULL", "STORE_UNAVAILABLE"}


@pytest.mark.parametrize(("code", "cls"), WIRE_CODES.items())
def test_each_protocol_code_has_its_class(code: str, cls: type[MQError]) -> None:
    assert error_class(code) is cls
    assert code == cls.CODE
    assert issubclass(cls, MQError)


@pytest.mark.parametrize(("code", "cls"), WIRE_CODES.items())
def test_the_errors_that_say_not_now_are_retryable(code: str, cls: type[MQError]) -> None:
    err = cls(code, "m", False)
    assert err.retryable is (code in RETRYABLE_CODES)
    assert isinstance(err, Retryable) is (code in RETRYABLE_CODES)


@pytest.mark.parametrize(
    ("name", "cls", "fatal"),
    [
        ("store full error reply", StoreFull, False),
        ("store unavailable error reply", StoreUnavailable, False),
        ("overloaded error reply without rid", Overloaded, True),
    ],
)
def test_retryable_error_reply_vectors(name: str, cls: type[MQError], fatal: bool) -> None:
    err = error_from_reply(vector(name)["meaning"])
    assert type(err) is cls and err.retryable and err.fatal is fatal


def test_unknown_code_maps_to_the_base_class() -> None:
    assert error_class("SOMETHING_NEW") is MQError
    err = error_from_reply({"rid": 1, "ok": False, "code": "SOMETHING_NEW", "message": "m", "fatal": False})
    assert type(err) is MQError and err.code == "SOMETHING_NEW" and not err.retryable


def test_error_reply_vector() -> None:
    err = error_from_reply(vector("error reply")["meaning"])
    assert isinstance(err, LeaseLost)
    assert err.code == "LEASE_LOST"
    assert err.message == "lease 1.1 is no longer held: message 1 was acked or removed"
    assert err.fatal is False
    assert str(err) == "LEASE_LOST: lease 1.1 is no longer held: message 1 was acked or removed"


def test_fatal_error_reply_vector() -> None:
    err = error_from_reply(vector("fatal error reply without rid")["meaning"])
    assert isinstance(err, FrameTooLarge)
    assert err.fatal is True


def test_error_reply_without_code_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        error_from_reply({"rid": 1, "ok": False})


def test_error_reply_with_missing_message_and_fatal_is_tolerated() -> None:
    err = error_from_reply({"rid": 1, "ok": False, "code": "BAD_REQUEST"})
    assert isinstance(err, BadRequest) and err.message == "" and err.fatal is False


@pytest.mark.parametrize("cls", [ConnectionLost, ProtocolError])
def test_client_side_errors(cls: type[errors.ClientError]) -> None:
    err = cls("gone")
    assert isinstance(err, MQError)
    assert err.fatal is True
    assert err.code == cls.CODE and err.code not in WIRE_CODES
    assert err.message == "gone"


@pytest.mark.parametrize(
    "err",
    [LeaseLost("LEASE_LOST", "m", False), ShuttingDown("SHUTTING_DOWN", "bye", True), ConnectionLost("gone")],
)
def test_errors_pickle_and_clone(err: MQError) -> None:
    for copy in (pickle.loads(pickle.dumps(err)), clone_error(err)):
        assert type(copy) is type(err)
        assert (copy.code, copy.message, copy.fatal) == (err.code, err.message, err.fatal)
        assert copy is not err


def test_a_full_store_fails_the_call_and_keeps_the_connection() -> None:
    """STORE_FULL is not fatal: the publish raises it, typed and retryable, and the same
    connection serves the next call (the broker keeps reads working meanwhile)."""

    async def scenario(broker: FakeBroker) -> None:
        full = vector("store full error reply")["meaning"]

        async def refuse_publishes(conn: int, request: dict[str, Any]) -> dict[str, Any] | None:
            return {k: v for k, v in full.items() if k != "rid"} if request["op"] == "pub" else None

        broker.on_request = refuse_publishes
        async with AsyncClient.connect(broker.url) as client:
            with pytest.raises(StoreFull) as raised:
                await client.publish("q", b"x")
            assert raised.value.retryable and not raised.value.fatal
            await client.ping()
            assert len({s.conn for s in broker.seen}) == 1

    async def main() -> None:
        broker = await FakeBroker().start()
        try:
            await scenario(broker)
        finally:
            await broker.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "cls", "fatal"),
    [
        ("unauthenticated error reply", errors.Unauthenticated, False),
        ("forbidden error reply", errors.Forbidden, False),
        ("tls required error reply", errors.TlsRequired, True),
    ],
)
def test_access_error_reply_vectors(name: str, cls: type[MQError], fatal: bool) -> None:
    err = error_from_reply(vector(name)["meaning"])
    assert type(err) is cls and err.fatal is fatal and not err.retryable
