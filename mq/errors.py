"""Wire error codes and the broker's exceptions. Imports nothing of ours.

Every error the broker reports carries a machine code (protocol.md section 8), a human message
and whether the connection survives it (`fatal`).
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    BAD_FRAME = "BAD_FRAME"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    LINE_TOO_LONG = "LINE_TOO_LONG"
    UNKNOWN_OP = "UNKNOWN_OP"
    BAD_REQUEST = "BAD_REQUEST"
    LEASE_LOST = "LEASE_LOST"
    NOT_YOUR_LEASE = "NOT_YOUR_LEASE"
    NAME_TAKEN = "NAME_TAKEN"
    NO_SESSION = "NO_SESSION"
    NOT_FOUND = "NOT_FOUND"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    OVERLOADED = "OVERLOADED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    TLS_REQUIRED = "TLS_REQUIRED"
    STORE_FULL = "STORE_FULL"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    MOVED = "MOVED"  # clustered: another broker serves this slot (the reply says which)
    TRYAGAIN = "TRYAGAIN"  # clustered: the slot is moving or loading; retry shortly
    CROSSSLOT = "CROSSSLOT"  # clustered: the request names queues of two slots
    INTERNAL = "INTERNAL"


FATAL_CODES = frozenset({Code.FRAME_TOO_LARGE, Code.SHUTTING_DOWN, Code.OVERLOADED,
                         Code.TLS_REQUIRED})


class MQError(Exception):
    """An error that is reported to the client as `code` + `message`."""

    def __init__(self, code: Code, message: str, fatal: bool | None = None,
                 details: dict[str, int | str] | None = None) -> None:
        """`fatal` None: as the code says (FATAL_CODES); a code that is fatal only sometimes
        (UNAUTHENTICATED after the last allowed failure) says so here. `details`: more fields
        of the binary error reply (MOVED's slot, addr and map_epoch)."""
        super().__init__(message)
        self.code = code
        self.message = message
        self._fatal = fatal
        self.details = details or {}

    @property
    def fatal(self) -> bool:
        """True when the connection is closed after the error is reported."""
        return self.code in FATAL_CODES if self._fatal is None else self._fatal

    def __repr__(self) -> str:
        return f"MQError({self.code.value}, {self.message!r})"


def bad_request(message: str) -> MQError:
    return MQError(Code.BAD_REQUEST, message)


def moved(slot: int, addr: str, map_epoch: int, node: str) -> MQError:
    """Slot `slot` is served by `node` at `addr`: the text line reads
    `-ERR MOVED <slot> <addr> ...`, the binary reply carries slot, addr and map_epoch."""
    return MQError(Code.MOVED, f"{slot} {addr} slot {slot} is served by node {node}; send it "
                   "there (the SDK follows this by itself)",
                   details={"slot": slot, "addr": addr, "map_epoch": map_epoch})
