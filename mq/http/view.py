"""What the HTTP side port may know of a broker: plain values, read when a request comes.

The server implements `BrokerView` (mq/server/observe.py); nothing here imports the server, so
the HTTP layer cannot change the broker's state, only read what the view hands out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per bucket: `counts[i]` values were at most `bounds[i]` (and above the bound
    before); `counts[-1]` were above every bound. `total` is the sum of the values."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError("a histogram has one count per bound and one above them")


@dataclass(frozen=True, slots=True)
class Member:
    """One consumer of a queue's consumer group."""

    queue: str
    group: str
    consumer: str
    holder: str
    prefetch: int
    leases: int
    ring_share: float
    last_heartbeat_s_ago: float | None


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything /metrics shows, read at once. `queues`: name -> sizes and counters (the keys
    of QUEUE_GAUGES and QUEUE_COUNTERS in metrics.py); `server`: the server's STATS figures."""

    queues: dict[str, dict[str, float]]
    members: tuple[Member, ...]
    server: dict[str, Any]
    deaths: dict[str, int]  # consumer sessions that died, by cause
    errors: dict[str, int]  # error replies, by code
    traffic: dict[str, int]  # connections opened, bytes in and out
    commit_seconds: Histogram
    commit_changes: Histogram
    compacted: int
    log_bytes: int


class BrokerView(Protocol):
    def figures(self) -> Figures: ...

    def consumers(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` consumer sessions: name, holder, heartbeat age, leases, connected."""
        ...

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` messages waiting in dead-letter queues, with why and their last
        error."""
        ...

    def explain(self, msg_id: int) -> dict[str, Any]:
        """EXPLAIN of one message, as protocol.md section 2.3 describes its reply."""
        ...

    def not_ready(self) -> str | None:
        """Why the broker cannot serve writes now (the log is closed or failing); None if it
        can."""
        ...
