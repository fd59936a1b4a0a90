"""What a handler knows of the connection it serves (`Peer`), and what it returns (`Outcome`).

A handler never calls back into the server: it returns a reply to send now (a typed value of
mq/codec/replies.py, the one its command's SPEC declares), or says that the answer comes later,
and the round does the rest. That keeps the handlers free of the server's machinery (rounds,
commits, sockets) and the server wing free of import circles.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from mq.codec.commands import Get
from mq.codec.replies import Reply
from mq.server.sessions import Session


class Peer(Protocol):
    """The connection a command came in on, as the handlers see it."""

    anonymous_holder: str  # who holds its leases while it has no session
    session: Session[Peer] | None
    user: str | None  # the user it authenticated as (access.py)
    auth_failures: int
    authenticating: bool
    peer: str  # its address

    @property
    def holder(self) -> str:
        """Who holds the leases taken on this connection now."""
        ...

    def abort(self) -> None:
        """Close at once, dropping unsent bytes."""
        ...

    def over_output(self) -> bool:
        """Too many replies wait to be read by this client."""
        ...


@dataclass(frozen=True, slots=True)
class Wait:
    """A GET that found nothing: park it until a message arrives or its `wait_s` passes (or
    `min_wait_s`, when longer: a GET waiting for bodies read back from the log)."""

    get: Get
    min_wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Later:
    """Answer with what `work` returns (say, a read of the log) once it is done."""

    work: Coroutine[Any, Any, Reply]


@dataclass(frozen=True, slots=True)
class Goodbye:
    """Reply with `reply`, then close the connection once its replies are out."""

    reply: Reply


Outcome = Reply | Wait | Later | Goodbye
"""A plain reply is the one to send now: the common case, so it is not wrapped."""
