"""Time as the core sees it: a callable returning seconds, so tests can drive it by hand. The
broker has two: the wall clock (Unix s) and a monotonic one (any origin, never steps)."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
