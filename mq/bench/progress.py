"""The live progress line, and the timeline of counts it samples on the way.

A thread reads the shared counters every 0.1 s from the start signal on. The samples make the
timeline of the run (kept in the report, so a rate that sags as the backlog grows shows up as
"first tenth vs last tenth"); every few samples also make the progress line on stderr.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from mq.bench.shared import Counter, Shared

SAMPLE_INTERVAL_S = 0.1
TTY_EVERY = 5  # samples between redraws on a terminal: twice a second, in place
LOG_EVERY = 50  # samples between lines in a file or pipe: every 5 s, so CI logs stay readable

Sample = tuple[float, int, int]  # (seconds since the start signal, confirmed, received)


class Progress:
    """Samples the counters from a thread until `stop()`; shows them on `stream` if given."""

    def __init__(self, shared: Shared, stream: TextIO | None) -> None:
        self._shared = shared
        self._stream = stream
        self._tty = stream is not None and stream.isatty()
        self._every = TTY_EVERY if self._tty else LOG_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="mq-bench-progress")
        self._started = 0.0
        self._width = 0
        self.timeline: list[Sample] = []

    def start(self) -> None:
        """Start sampling; the timeline counts from now (call it at the start signal)."""
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(2.0)
        self._sample()  # the final counts, which the last tick may have missed
        if self._stream is not None and self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()

    def _sample(self) -> Sample:
        sample = (time.monotonic() - self._started, self._shared.total(Counter.CONFIRMED),
                  self._shared.total(Counter.RECEIVED))
        self.timeline.append(sample)
        return sample

    def _run(self) -> None:
        shown: Sample = (0.0, 0, 0)
        ticks = 0
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            sample = self._sample()
            ticks += 1
            if self._stream is None or ticks % self._every:
                continue
            span = max(sample[0] - shown[0], 1e-9)
            line = self.line(sample[0], (sample[1] - shown[1]) / span,
                             (sample[2] - shown[2]) / span)
            shown = sample
            if self._tty:
                self._stream.write("\r" + line.ljust(self._width))
                self._width = max(self._width, len(line))
            else:
                self._stream.write(line + "\n")
            self._stream.flush()

    def line(self, elapsed_s: float, publish_rate: float, consume_rate: float) -> str:
        """One progress line; rates in msgs/s since the previous line."""
        shared = self._shared
        parts = [f"{elapsed_s:6.1f} s"]
        if shared.producers:
            parts.append(f"publish {publish_rate:>9,.0f}/s")
        if shared.consumers:
            parts.append(f"consume {consume_rate:>9,.0f}/s")
        if shared.producers:
            parts.append(f"sent {shared.total(Counter.SENT):,}")
            parts.append(f"confirmed {shared.total(Counter.CONFIRMED):,}")
        if shared.consumers:
            parts.append(f"received {shared.total(Counter.RECEIVED):,}")
        parts.append(f"errors {shared.total(Counter.ERRORS):,}")
        return "  ".join(parts)


def tenth_rates(timeline: list[Sample], column: int, total: int) -> tuple[float, float] | None:
    """Msgs/s over the first and the last tenth of `total` messages, from a timeline column
    (1: confirmed, 2: received); None when the timeline is too coarse to tell."""
    tenth = total / 10
    first = _crossing_s(timeline, column, tenth)
    last_start = _crossing_s(timeline, column, total - tenth)
    end = _crossing_s(timeline, column, total)
    if first is None or last_start is None or end is None or first <= 0 or end <= last_start:
        return None
    return tenth / first, tenth / (end - last_start)


def _crossing_s(timeline: list[Sample], column: int, level: float) -> float | None:
    """When the count in `column` reached `level`, interpolated between samples, in seconds."""
    t0, v0 = 0.0, 0.0
    for sample in timeline:
        t, v = sample[0], sample[column]
        if v >= level:
            return t0 + (t - t0) * (level - v0) / (v - v0) if v > v0 else t
        t0, v0 = t, v
    return None
