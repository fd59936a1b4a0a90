"""Consumer sessions, client side: the values both clients keep (protocol.md sections 4.1, 4.2).

Pure: no sockets, no clock, no event loop. `Session` is what `hello` answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mq_client.errors import ProtocolError


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Session:
    """A consumer session, as the broker's `hello` reply describes it.

    `token` resumes the session after a reconnect; `heartbeat_s` is the interval the broker
    expects signs of life at, `dead_after_s` the silence after which it declares the session
    dead, `grace_s` how long it waits for a reconnect; all in seconds. `resumed` says whether
    this `hello` resumed an existing session (its leases and groups survived) or started one.
    """

    token: str
    consumer: str
    heartbeat_s: float
    dead_after_s: float
    grace_s: float
    resumed: bool

    def __post_init__(self) -> None:
        problems = [
            name
            for name, ok in (
                ("token", isinstance(self.token, str) and bool(self.token)),
                ("consumer", isinstance(self.consumer, str) and bool(self.consumer)),
                ("heartbeat_s", _is_number(self.heartbeat_s) and self.heartbeat_s > 0),
                ("dead_after_s", _is_number(self.dead_after_s) and self.dead_after_s > 0),
                ("grace_s", _is_number(self.grace_s) and self.grace_s >= 0),
                ("resumed", isinstance(self.resumed, bool)),
            )
            if not ok
        ]
        if problems:
            detail = ", ".join(f"{name}={getattr(self, name)!r:.80}" for name in problems)
            raise ValueError(f"invalid session field(s): {detail}")
        for name in ("heartbeat_s", "dead_after_s", "grace_s"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_wire(cls, reply: Mapping[str, Any], consumer: str) -> Session:
        """Build a session from a `hello` reply for `consumer`; raises `ProtocolError` if malformed."""
        # Values come from the wire as Any; __post_init__ checks every one of them.
        fields: dict[str, Any] = {
            "token": reply.get("session"),
            "consumer": consumer,
            **{name: reply.get(name) for name in ("heartbeat_s", "dead_after_s", "grace_s", "resumed")},
        }
        try:
            return cls(**fields)
        except ValueError as exc:
            raise ProtocolError(f"bad hello reply: {exc}") from exc

