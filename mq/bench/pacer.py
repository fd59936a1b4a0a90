"""Fires open-loop sends at their scheduled times, from a thread with a fine-grained clock.

Why a thread: the event loop's timers have millisecond resolution (uvloop rounds a 0.5 ms sleep
down to none at all), which at 2,000 msgs/s would bunch sends into bursts and add up to a
millisecond of harness-made latency to every message. `time.sleep` in a thread wakes within
about 0.1 ms. On each wake the pacer hands the loop, in one thread-safe call, the number of
requests due so far; the loop sends them. Whatever lag is left is measured (scheduled -> sent)
and reported, and latencies count from the scheduled time, so lag is never hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import sys
import threading
import time
from collections.abc import Callable

MAX_SLEEP_S = 0.05  # wake at least this often to notice a stop request
_PR_SET_TIMERSLACK = 29  # prctl(2) option, Linux
_TIMER_SLACK_NS = 1


def _tighten_timer_slack() -> None:
    """Ask Linux to wake this thread on time rather than up to 50 us late (its default slack).

    Measured here: time.sleep(0.5 ms) overshoots by ~76 us at the default, ~26 us at 1 ns.
    Best effort: elsewhere, or if refused, sleeps are merely a little later.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, _TIMER_SLACK_NS, 0, 0, 0)


class Pacer:
    """Calls `fire(n)` on `loop` whenever the first `n` of `total` requests have come due.

    `due_ns(k)` is the scheduled time of request k, a time.time_ns() value, non-decreasing in k.
    `should_stop()` is polled from the thread. `done` is set (on the loop) when the pacer ends.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        total: int,
        due_ns: Callable[[int], int],
        fire: Callable[[int], None],
        should_stop: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._total = total
        self._due_ns = due_ns
        self._fire = fire
        self._should_stop = should_stop
        self.done = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="mq-bench-pacer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            _tighten_timer_slack()  # per thread: only the pacer's own sleeps are affected
            self._pace()
        finally:
            # The loop may already be closed, and then nobody is waiting.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.done.set)

    def _pace(self) -> None:
        fired = 0
        while fired < self._total and not self._should_stop():
            now = time.time_ns()
            wait_ns = self._due_ns(fired) - now
            if wait_ns > 0:
                time.sleep(min(wait_ns / 1e9, MAX_SLEEP_S))
                continue
            due = fired + 1
            while due < self._total and self._due_ns(due) <= now:
                due += 1
            self._loop.call_soon_threadsafe(self._fire, due)
            fired = due

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
