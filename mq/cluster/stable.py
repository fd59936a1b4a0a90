"""The controller's stable-membership guard. Pure: the clock is given.

A broker that dies leaves slots with nobody to serve them: those move at once, whatever this
says. Every other move (a join, a rejoin, a drain) only spreads load, so it waits until the
membership the controller reads has stayed the same for `settle_s`. That keeps a flapping
broker (one whose lease lapses, which registers again, and lapses again) from pulling slots
to and fro, and a controller that just took over (an etcd election, the old controller's
death) from moving anything before it has watched the membership for a while.
"""

from __future__ import annotations

from collections.abc import Callable


class StableMembership:
    def __init__(self, settle_s: float, clock: Callable[[], float]) -> None:
        self.settle_s = settle_s
        self._clock = clock
        self._seen: tuple[frozenset[str], frozenset[str]] | None = None
        self._since = 0.0

    def stable(self, live: frozenset[str], leaving: frozenset[str]) -> bool:
        """Whether (live, leaving), read now, has been the same for `settle_s` of readings.
        The first reading starts the count."""
        now = self._clock()
        if (live, leaving) != self._seen:
            self._seen = (live, leaving)
            self._since = now
        return now - self._since >= self.settle_s
