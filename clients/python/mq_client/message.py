"""The value types of the client: a delivered message (protocol.md section 2.3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mq_client.errors import ProtocolError


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, but never a valid count or id on the wire.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a message, as returned by `get`.

    `receipt` names this delivery (`<msg_id>.<deliveries>`) and is what `ack`, `nack` and
    `touch` take; `deliveries` counts leases including this one (1 on first delivery);
    `published_at` is the Unix time of the publish, in seconds.
    """

    receipt: str
    msg_id: int
    queue: str
    deliveries: int
    body: bytes
    key: str | None
    published_at: float

    def __post_init__(self) -> None:
        # msgpack may carry a whole-second timestamp as an int; the field is always a float.
        if _is_int(self.published_at):
            object.__setattr__(self, "published_at", float(self.published_at))
        problems = [
            name
            for name, ok in (
                ("receipt", isinstance(self.receipt, str) and bool(self.receipt)),
                ("msg_id", _is_int(self.msg_id) and self.msg_id >= 0),
                ("queue", isinstance(self.queue, str)),
                ("deliveries", _is_int(self.deliveries) and self.deliveries >= 1),
                ("body", isinstance(self.body, bytes)),
                ("key", self.key is None or isinstance(self.key, str)),
                ("published_at", isinstance(self.published_at, float)),
            )
            if not ok
        ]
        if problems:
            # Values cut to 80 characters: a body can be megabytes.
            detail = ", ".join(f"{name}={getattr(self, name)!r:.80}" for name in problems)
            raise ValueError(f"invalid message field(s): {detail}")

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Message:
        """Build a message from its map in a `get` reply; raises `ProtocolError` if malformed."""
        if not isinstance(m, Mapping):
            raise ProtocolError(f"a message must be a map, got {type(m).__name__}")
        # Values come from the wire as Any; __post_init__ checks every one of them.
        fields: dict[str, Any] = {name: m.get(name) for name in cls.__dataclass_fields__}
        try:
            return cls(**fields)
        except ValueError as exc:
            raise ProtocolError(f"bad message in reply: {exc}") from exc

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (raises UnicodeDecodeError if it is not)."""
        return self.body.decode("utf-8")
