"""Bodies read back from the log (`read_bodies`), and a restart that keeps only its budget of
them in memory: against a real log of each store, reopened."""

from __future__ import annotations

import asyncio

import pytest

from mq.storage.base import MAX_BODY_READ
from tests.storage.log_files import LogTarget, every_message, new_broker, opened


def test_bodies_are_read_by_id_a_copy_gets_the_body_it_shares(target: LogTarget) -> None:
    broker = new_broker()
    broker.publish("a", b"first")
    broker.bind("t", "b")
    broker.bind("t", "c")
    broker.publish_to_topic("t", b"shared")  # 2 holds the body, 3 points at it
    asyncio.run(target.write_once(broker))

    async def read() -> dict[int, bytes]:
        async with opened(store):
            return await store.read_bodies([3, 1, 2, 99])
    store = target.store()
    assert asyncio.run(read()) == {1: b"first", 2: b"shared", 3: b"shared"}


def test_more_ids_than_one_read_takes_are_refused(target: LogTarget) -> None:
    async def read() -> None:
        async with opened(store):
            await store.read_bodies(list(range(MAX_BODY_READ + 1)))
    store = target.store()
    with pytest.raises(ValueError, match="at most"):
        asyncio.run(read())


def test_a_restart_keeps_bodies_within_its_budget_and_sizes_beyond(target: LogTarget) -> None:
    broker = new_broker()
    for i in range(10):
        broker.publish("q", b"%03d" % i)  # 3 bytes each
    asyncio.run(target.write_once(broker))

    async def reopen() -> list[bytes | int]:
        async with opened(target.store(max_body_memory_bytes=10)) as recovered:
            return [m.body for m in every_message(recovered)]
    assert asyncio.run(reopen()) == [b"000", b"001", b"002", *[3] * 7]
