"""A log-linear latency histogram: constant relative precision over any range, cheap to merge.

Theory of operation (the HdrHistogram layout, reduced to what the harness needs). Values are
integer nanoseconds. Below 256 ns every value has its own bucket. Above, each power of two is
cut into 128 equal buckets, so a bucket is never wider than 1/128 of its lower edge: reporting
its midpoint is within 0.4 % of any value that fell in it. Bucket `i` of a value `v` is
`e * 128 + (v >> e)` with `e = max(0, bit_length(v) - 8)`, which is continuous across octaves,
so the counts are one flat list. Exact min, max, count and sum are kept beside it.

Histograms of many workers (threads or processes) merge by adding counts; they pickle as a
plain list, so a worker process can send its own back to the harness.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SUB_BUCKET_BITS = 7
SUB_BUCKETS = 1 << SUB_BUCKET_BITS  # 128 buckets per octave: at most 1/128 wide
MAX_TRACKABLE_NS = 3_600 * 10**9  # one hour; longer values count as one hour (max stays exact)

# The percentiles every report shows, as fractions.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999),
)


def bucket_of(value_ns: int) -> int:
    """The bucket index of a value in nanoseconds (0 .. bucket_of(MAX_TRACKABLE_NS))."""
    shift = value_ns.bit_length() - SUB_BUCKET_BITS - 1
    if shift <= 0:
        return value_ns
    return shift * SUB_BUCKETS + (value_ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest value of bucket `index` and its width, in nanoseconds."""
    if index < 2 * SUB_BUCKETS:
        return index, 1
    shift = index // SUB_BUCKETS - 1
    return (index - shift * SUB_BUCKETS) << shift, 1 << shift


_BUCKETS = bucket_of(MAX_TRACKABLE_NS) + 1


class Histogram:
    """Counts of latencies in nanoseconds; percentiles within 0.4 %, min and max exact."""

    __slots__ = ("count", "counts", "max_ns", "min_ns", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.sum_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def record(self, value_ns: int, times: int = 1) -> None:
        """Count `value_ns` (nanoseconds; negative counts as 0) `times` times."""
        if value_ns < 0:
            value_ns = 0  # clocks of two processes agree to well under a microsecond; never below 0
        if times <= 0:
            return
        self.counts[bucket_of(min(value_ns, MAX_TRACKABLE_NS))] += times
        if self.count == 0 or value_ns < self.min_ns:
            self.min_ns = value_ns
        if value_ns > self.max_ns:
            self.max_ns = value_ns
        self.count += times
        self.sum_ns += value_ns * times

    def record_all(self, values_ns: Iterable[int]) -> None:
        """Count each value of `values_ns` once."""
        for value in values_ns:
            self.record(value)

    def merge(self, other: Histogram) -> None:
        """Add the counts of `other` to this histogram."""
        if other.count == 0:
            return
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.min_ns = other.min_ns if self.count == 0 else min(self.min_ns, other.min_ns)
        self.max_ns = max(self.max_ns, other.max_ns)
        self.count += other.count
        self.sum_ns += other.sum_ns

    def percentile_ns(self, fraction: float) -> float:
        """The value below which `fraction` (0..1) of the counts lie, in nanoseconds.

        The midpoint of the bucket holding that rank, clamped to the exact min and max; 0 when
        empty. `fraction` 1 gives the exact max.
        """
        if self.count == 0:
            return 0.0
        if fraction >= 1.0:
            return float(self.max_ns)
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                low, width = bucket_bounds(index)
                middle = low + (width - 1) / 2
                return float(min(max(middle, self.min_ns), self.max_ns))
        return float(self.max_ns)  # unreachable: the counts add up to self.count

    def summary_us(self) -> dict[str, float | int]:
        """count, mean, p50 .. p99.9 and max, in microseconds (count is a plain number)."""
        summary: dict[str, float | int] = {"count": self.count}
        summary["mean"] = round(self.sum_ns / self.count / 1e3, 1) if self.count else 0.0
        for name, fraction in PERCENTILES:
            summary[name] = round(self.percentile_ns(fraction) / 1e3, 1)
        summary["max"] = round(self.max_ns / 1e3, 1)
        return summary
