"""The bench's options are bounded by the protocol's own limits (mq/limits.py), at their edges."""

from __future__ import annotations

import pytest

from mq.bench.options import BenchOptions
from mq.limits import MAX_GET_BATCH, MAX_NAME_CHARS, MAX_PREFETCH, MAX_PUB_BATCH


def test_batch_is_bounded_by_the_bodies_of_one_mpub() -> None:
    assert BenchOptions(batch=MAX_PUB_BATCH).batch == MAX_PUB_BATCH
    with pytest.raises(ValueError, match=f"batch must be 1..{MAX_PUB_BATCH}"):
        BenchOptions(batch=MAX_PUB_BATCH + 1)


@pytest.mark.parametrize(("consume", "most"), [("sub", MAX_PREFETCH), ("get", MAX_GET_BATCH)])
def test_prefetch_is_bounded_by_the_way_of_consuming(consume: str, most: int) -> None:
    assert BenchOptions(consume=consume, prefetch=most).max_prefetch == most
    with pytest.raises(ValueError, match=f"prefetch must be 1..{most}"):
        BenchOptions(consume=consume, prefetch=most + 1)


def test_queue_names_are_the_protocols() -> None:
    assert BenchOptions(queue="q" * MAX_NAME_CHARS).queue == "q" * MAX_NAME_CHARS
    with pytest.raises(ValueError, match=f"queue must be 1..{MAX_NAME_CHARS}"):
        BenchOptions(queue="q" * (MAX_NAME_CHARS + 1))
