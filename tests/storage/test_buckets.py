"""The commit histograms: a value lands in the first bucket whose bound is at least the value."""

from __future__ import annotations

from mq.storage.group_commit import Buckets


def test_a_value_on_a_bound_counts_in_that_bucket_and_above_all_in_the_last() -> None:
    b = Buckets((1.0, 10.0))
    for value in (0.5, 1.0, 1.5, 10.0, 11.0, 1e9):
        b.add(value)
    assert b.counts == [2, 2, 2]
    assert b.total == 0.5 + 1.0 + 1.5 + 10.0 + 11.0 + 1e9
