"""Typed errors of the mq client.

Errors the broker reports (protocol.md section 8) arrive as a reply map with `code`, `message`
and `fatal`; each code has its own `MQError` subclass so callers can write
`except LeaseLost:`. Errors that say "not now" rather than "never" (the broker's log cannot be
written at the moment, the broker is overloaded) are `Retryable` and have `retryable` True: the
same request, sent again later, may succeed. Failures the client detects itself (the connection dropped, the peer sent
bytes that are not the protocol) are `ConnectionLost` and `ProtocolError`; their codes never
appear on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class MQError(Exception):
    """An error with a machine `code`, a human `message` and whether the connection is gone.

    `fatal` is the broker's word: True means the broker closes the connection after its reply.
    """

    CODE: ClassVar[str] = ""
    RETRYABLE: ClassVar[bool] = False

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        # args carry all three fields so the exception pickles and reprs faithfully.
        super().__init__(code, message, fatal)
        self.code = code
        self.message = message
        self.fatal = fatal

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed if it is sent again later."""
        return self.RETRYABLE

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class Retryable(MQError):
    """Base of the errors that say "not now": the request may succeed if sent again later."""

    RETRYABLE = True


class BadFrame(MQError):
    """The broker could not read a binary payload as one msgpack map."""

    CODE = "BAD_FRAME"


class FrameTooLarge(MQError):
    """A frame is above `max_frame_bytes`; from the broker this is fatal."""

    CODE = "FRAME_TOO_LARGE"


class LineTooLong(MQError):
    """A text-mode line is above `max_line_bytes` (never seen in binary mode)."""

    CODE = "LINE_TOO_LONG"


class UnknownOp(MQError):
    """The broker does not know the operation."""

    CODE = "UNKNOWN_OP"


class BadRequest(MQError):
    """A field is missing, of the wrong type or out of bounds."""

    CODE = "BAD_REQUEST"


class LeaseLost(MQError):
    """The receipt's lease is no longer held: expired, or the message was acked, nacked or removed."""

    CODE = "LEASE_LOST"


class NotYourLease(MQError):
    """The lease belongs to another holder: another connection, or another consumer session."""

    CODE = "NOT_YOUR_LEASE"


class NameTaken(MQError):
    """`join` with a consumer name that a live member of the group already uses."""

    CODE = "NAME_TAKEN"


class NoSession(MQError):
    """`join` or `leave` before `hello`: groups need a consumer session."""

    CODE = "NO_SESSION"


class NotFound(MQError):
    """`delete` of a queue that does not exist."""

    CODE = "NOT_FOUND"


class ShuttingDown(MQError):
    """The broker is stopping; the connection closes after this reply."""

    CODE = "SHUTTING_DOWN"


class Overloaded(Retryable):
    """The broker holds too many unfinished frames of all clients together; it closes this
    connection (fatal). Retry later on a new connection, with smaller frames if they are large."""

    CODE = "OVERLOADED"


class StoreFull(Retryable):
    """The broker's log cannot be written now: its disk is full. Not fatal; reads still work.
    The request was not confirmed and may or may not take effect: a retry may store a publish
    twice unless it carries a `dedup_id`."""

    CODE = "STORE_FULL"


class StoreUnavailable(Retryable):
    """The broker's log cannot be written now: the file or its mount is read-only or gone. Not
    fatal; reads still work. The request was not confirmed and may or may not take effect."""

    CODE = "STORE_UNAVAILABLE"


class Moved(MQError):
    """Clustered: another broker serves this queue's slot; `slot`, `addr` (host:port) and
    `map_epoch` say which. A cluster client follows it by itself."""

    CODE = "MOVED"

    def __init__(  # noqa: PLR0917 (positional, like every error's args: clone_error passes them so)
        self, code: str, message: str, fatal: bool = False, slot: int = -1, addr: str = "", map_epoch: int = 0
    ) -> None:
        super().__init__(code, message, fatal)
        self.args = (code, message, fatal, slot, addr, map_epoch)
        self.slot = slot
        self.addr = addr
        self.map_epoch = map_epoch


class TryAgain(Retryable):
    """Clustered: the slot is moving to another broker, or loading there; retry in a moment.
    A cluster client retries by itself. The request was not confirmed and may or may not take
    effect."""

    CODE = "TRYAGAIN"


class CrossSlot(MQError):
    """Clustered: the request ties queues of two slots together (bind, dead_letter=, redrive
    to=); give them one {hash tag}."""

    CODE = "CROSSSLOT"


class Unauthenticated(MQError):
    """The broker needs `auth` first (give credentials in the URL, `mq://user:secret@host`, or
    as arguments), or the user or secret is wrong, or the user was removed. After the broker's
    last allowed failure it is fatal: the broker closes the connection."""

    CODE = "UNAUTHENTICATED"


class Forbidden(MQError):
    """The user lacks the permission the command needs on its queue; the message names both."""

    CODE = "FORBIDDEN"


class TlsRequired(MQError):
    """The broker's port speaks TLS only: connect with `mqs://`. Fatal."""

    CODE = "TLS_REQUIRED"


class InternalError(MQError):
    """A bug in the broker (it logged the traceback)."""

    CODE = "INTERNAL"


class ClientError(MQError):
    """A failure detected by the client itself rather than reported by the broker."""

    def __init__(self, message: str) -> None:
        # Client-side failures always leave the connection unusable, hence fatal=True.
        MQError.__init__(self, self.CODE, message, True)
        self.args = (message,)


class ConnectionLost(ClientError):
    """The connection could not be made or dropped; pending requests may or may not have run."""

    CODE = "CONNECTION_LOST"


class OutcomeUnknown(ConnectionLost):
    """The connection dropped after a request went out and before its reply came: it may or
    may not have taken effect (protocol.md section 5). `safe_to_retry` says whether sending it
    again is harmless: a publish without a `dedup_id` is not (it may be stored twice), one with
    a `dedup_id` is, and so are reads, `get`, `ack`, `nack` and `touch` (at-least-once)."""

    CODE = "OUTCOME_UNKNOWN"

    def __init__(self, message: str, safe_to_retry: bool = False) -> None:
        super().__init__(message)
        self.safe_to_retry = safe_to_retry
        self.args = (message, safe_to_retry)


class ProtocolError(ClientError):
    """The peer sent bytes that do not follow protocol.md (bad framing, bad msgpack, bad reply)."""

    CODE = "PROTOCOL_ERROR"


_BY_CODE: dict[str, type[MQError]] = {
    cls.CODE: cls
    for cls in (
        BadFrame,
        FrameTooLarge,
        LineTooLong,
        UnknownOp,
        BadRequest,
        LeaseLost,
        NotYourLease,
        NameTaken,
        NoSession,
        NotFound,
        ShuttingDown,
        Overloaded,
        StoreFull,
        StoreUnavailable,
        Moved,
        TryAgain,
        CrossSlot,
        Unauthenticated,
        Forbidden,
        TlsRequired,
        InternalError,
    )
}


def error_class(code: str) -> type[MQError]:
    """The exception class for a wire error code; unknown codes map to `MQError` itself."""
    return _BY_CODE.get(code, MQError)


def clone_error(error: MQError) -> MQError:
    """A fresh copy of `error`, to raise one failure in many calls without sharing tracebacks."""
    copy = type(error)(*error.args)
    copy.__cause__ = error.__cause__
    return copy


def error_from_reply(reply: Mapping[str, Any]) -> MQError:
    """Build the typed exception for a reply with `ok: false`.

    Raises `ProtocolError` if the reply lacks a string `code`; a missing message or fatal flag
    is tolerated (empty message, not fatal) since the code alone says what went wrong.
    """
    code = reply.get("code")
    if not isinstance(code, str):
        raise ProtocolError(f"error reply without a string code: {dict(reply)!r}")
    message = reply.get("message")
    fatal = reply.get("fatal")
    if code == Moved.CODE:
        slot, addr, epoch = reply.get("slot"), reply.get("addr"), reply.get("map_epoch")
        if not isinstance(slot, int) or not isinstance(addr, str):
            raise ProtocolError(f"MOVED without a slot and an addr: {dict(reply)!r}")
        return Moved(code, message if isinstance(message, str) else "", False, slot, addr,
                     epoch if isinstance(epoch, int) else 0)
    return error_class(code)(
        code,
        message if isinstance(message, str) else "",
        fatal if isinstance(fatal, bool) else False,
    )
