"""The latency histogram: bucket layout, percentiles of known data, merging."""

from __future__ import annotations

import pickle
import random

import pytest

from mq.bench.histogram import MAX_TRACKABLE_NS, Histogram, bucket_bounds, bucket_of


def exact_percentile(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


@pytest.mark.parametrize("value", [0, 1, 255, 256, 257, 511, 512, 1_000, 123_456, 10**9,
                                   MAX_TRACKABLE_NS])
def test_every_value_falls_in_its_bucket(value: int) -> None:
    low, width = bucket_bounds(bucket_of(value))
    assert low <= value < low + width
    assert width <= max(1, low / 128)  # the bucket is at most 1/128 of its value wide


def test_buckets_are_contiguous() -> None:
    for index in range(1, bucket_of(MAX_TRACKABLE_NS) + 1):
        low, _ = bucket_bounds(index)
        prev_low, prev_width = bucket_bounds(index - 1)
        assert prev_low + prev_width == low


@pytest.mark.parametrize("name", ["uniform", "lognormal", "bimodal"])
def test_percentiles_of_known_data_are_within_one_percent(name: str) -> None:
    rng = random.Random(7)
    if name == "uniform":
        values = [rng.randrange(1_000, 10_000_000) for _ in range(50_000)]
    elif name == "lognormal":
        values = [int(rng.lognormvariate(12, 1.5)) for _ in range(50_000)]
    else:
        values = [rng.choice((50_000, 5_000_000)) + rng.randrange(1_000) for _ in range(50_000)]
    h = Histogram()
    h.record_all(values)
    for fraction in (0.5, 0.9, 0.99, 0.999):
        exact = exact_percentile(values, fraction)
        assert h.percentile_ns(fraction) == pytest.approx(exact, rel=0.01)
    assert h.percentile_ns(1.0) == max(values)
    assert h.min_ns == min(values)
    assert h.count == len(values)
    assert h.sum_ns == sum(values)


def test_summary_is_in_microseconds_and_ordered() -> None:
    h = Histogram()
    h.record_all(range(1_000, 1_001_000, 1_000))  # 1 us .. 1 ms
    s = h.summary_us()
    assert s["count"] == 1_000
    assert s["p50"] == pytest.approx(500, rel=0.01)
    assert s["max"] == 1_000.0
    assert s["p50"] <= s["p90"] <= s["p99"] <= s["p99.9"] <= s["max"]


def test_record_many_times_counts_each() -> None:
    h = Histogram()
    h.record(2_000, times=99)
    h.record(1_000_000)
    assert h.count == 100
    assert h.percentile_ns(0.99) == pytest.approx(2_000, rel=0.01)
    assert h.percentile_ns(0.999) == 1_000_000


def test_negative_values_count_as_zero_and_empty_is_zero() -> None:
    h = Histogram()
    assert h.percentile_ns(0.5) == 0.0
    assert h.summary_us()["count"] == 0
    h.record(-5)
    assert h.min_ns == 0 and h.max_ns == 0


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(3)
    a_values = [rng.randrange(10**6) for _ in range(5_000)]
    b_values = [rng.randrange(10**8) for _ in range(5_000)]
    a, b, both = Histogram(), Histogram(), Histogram()
    a.record_all(a_values)
    b.record_all(b_values)
    both.record_all(a_values + b_values)
    a.merge(b)
    assert a.counts == both.counts
    assert (a.count, a.sum_ns, a.min_ns, a.max_ns) == (both.count, both.sum_ns, both.min_ns,
                                                       both.max_ns)


def test_a_histogram_survives_pickling() -> None:
    # Worker processes send theirs back to the harness through a multiprocessing queue.
    h = Histogram()
    h.record_all([10, 20_000, 3_000_000])
    copy = pickle.loads(pickle.dumps(h))
    assert copy.summary_us() == h.summary_us()
