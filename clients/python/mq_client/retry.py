"""Exponential backoff with jitter: one rule for every wait between two tries, pure.

Both job runners (`consume`, `consume_blocking`) space out a failing message's deliveries with
it, and both clients space out their reconnect attempts with it (`RECONNECT_BACKOFF`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Retry:
    """How long to wait before try n+1 after try n failed.

    After try n the delay is `min(cap_s, first_s * 2**(n-1))` seconds, less a random part of up
    to `jitter` of it (0: exact, 1: anywhere from 0 to the full delay), so what failed together
    does not all come back at the same instant.
    """

    first_s: float = 1.0
    cap_s: float = 300.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)
    """Uniform in [0, 1); injectable for tests."""

    def __post_init__(self) -> None:
        if not 0 <= self.first_s <= self.cap_s:
            raise ValueError(f"need 0 <= first_s <= cap_s, got first_s={self.first_s}, cap_s={self.cap_s}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be 0..1, got {self.jitter}")

    def delay_s(self, tries: int) -> float:
        """The delay, in seconds, after the `tries`-th try failed (a message's deliveries)."""
        full = min(self.cap_s, self.first_s * 2.0 ** min(max(tries - 1, 0), 64))
        return full * (1 - self.jitter * self.random())

    def delays(self) -> Iterator[float]:
        """The endless delays after try 1, 2, 3, ... in seconds."""
        tries = 0
        while True:
            tries += 1
            yield self.delay_s(tries)


RECONNECT_BACKOFF = Retry(first_s=0.05, cap_s=2.0, jitter=1.0)
"""Between reconnect attempts: full jitter, from up to 0.05 s doubling to up to 2 s, so many
clients cut off at once do not all come back at the same instant."""
JOB_RETRY = Retry()
"""The default of both job runners: up to 1 s after the first failure, doubling to up to 300 s."""
