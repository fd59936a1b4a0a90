"""Publish options (protocol.md 2.3): one value shared by pub, mpub and fanout.

In a binary request they sit flat in the request map, beside `queue` and `body`; in text mode
they are `name=value` tokens before the body (syntax.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any

from mq.codec.fields import Integer, Kind, Seconds, Text
from mq.codec.values import check_int, check_seconds, check_text, optional_seconds
from mq.limits import (
    MAX_DEDUP_BYTES,
    MAX_DELAY_S,
    MAX_NOT_BEFORE_S,
    MAX_PRIORITY,
    MAX_TTL_S,
    MIN_TTL_S,
)


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """How a message is published: priority, delay, TTL and deduplication."""

    priority: Integer = 0
    delay_s: Seconds = 0.0
    ttl_s: Seconds | None = None
    dedup_id: Text | None = None
    not_before: Seconds | None = None  # Unix s; the later of this and now + delay_s counts

    def __post_init__(self) -> None:
        check_int("priority", self.priority, 0, MAX_PRIORITY)
        check_seconds("delay_s", self.delay_s, 0.0, MAX_DELAY_S)
        optional_seconds("not_before", self.not_before, 0.0, MAX_NOT_BEFORE_S)
        optional_seconds("ttl_s", self.ttl_s, MIN_TTL_S, MAX_TTL_S)
        check_text("dedup_id", self.dedup_id, MAX_DEDUP_BYTES)

    def delay_from(self, now: float) -> float:
        """Seconds from `now` until the message may be delivered."""
        if self.not_before is None:
            return self.delay_s
        return max(self.delay_s, self.not_before - now)


PLAIN = PublishOptions()
OPTION_FIELDS = tuple(f.name for f in fields(PublishOptions))
_OPTION_KEYS = frozenset(OPTION_FIELDS)


def options_from_map(m: dict[str, Any]) -> PublishOptions:
    """The options a binary request carries; most carry none, and share PLAIN."""
    if _OPTION_KEYS.isdisjoint(m):  # the common case, in one C call
        return PLAIN
    given = {f: m[f] for f in OPTION_FIELDS if m.get(f) is not None}
    return PublishOptions(**given) if given else PLAIN


Options = Annotated[PublishOptions, Kind(options_from_map, whole_map=True)]
