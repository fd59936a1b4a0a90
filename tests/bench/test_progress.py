"""The timeline of a run: first and last tenth rates, and the live line's counts."""

from __future__ import annotations

import io

import pytest

from mq.bench.progress import Progress, Sample, tenth_rates
from mq.bench.shared import Counter, Shared


def timeline(rate_at: list[float], step_s: float = 0.1) -> list[Sample]:
    """Samples every `step_s` seconds of counts growing at `rate_at[i]` msgs/s in step i."""
    samples: list[Sample] = []
    count = 0.0
    for i, rate in enumerate(rate_at):
        count += rate * step_s
        samples.append(((i + 1) * step_s, round(count), round(count)))
    return samples


def test_a_steady_rate_has_equal_tenths() -> None:
    rates = tenth_rates(timeline([1_000.0] * 100), 1, 10_000)
    assert rates == pytest.approx((1_000, 1_000), rel=0.01)


def test_a_rate_that_halves_shows_in_the_last_tenth() -> None:
    # 5 s at 2,000/s, then 10 s at 1,000/s: 20,000 messages.
    rates = tenth_rates(timeline([2_000.0] * 50 + [1_000.0] * 100), 2, 20_000)
    assert rates == pytest.approx((2_000, 1_000), rel=0.01)


def test_an_unfinished_timeline_has_no_tenths() -> None:
    assert tenth_rates(timeline([1_000.0] * 10), 1, 10_000) is None
    assert tenth_rates([], 1, 10) is None


def test_the_line_shows_the_counts_of_both_sides() -> None:
    shared = Shared.create(producers=1, consumers=1, expected=10)
    shared.add(0, Counter.SENT, 7)
    shared.add(0, Counter.CONFIRMED, 5)
    shared.add(1, Counter.RECEIVED, 3)
    shared.add(1, Counter.ERRORS, 1)
    line = Progress(shared, io.StringIO()).line(1.5, 1234.0, 99.0)
    assert line.split() == ["1.5", "s", "publish", "1,234/s", "consume", "99/s", "sent", "7",
                            "confirmed", "5", "received", "3", "errors", "1"]
