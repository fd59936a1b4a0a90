"""What the broker confirmed survives SIGKILL: the at-least-once promise of protocol.md 5, on
both stores (a Postgres one on the session's throwaway server, tests/pg.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mq_client import AsyncClient

from tests.harness import BrokerProcess, wait_until


@pytest.mark.parametrize("sync", ["full", "normal"])
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_confirmed_publishes_and_acks_survive_sigkill(request: pytest.FixtureRequest,
                                                      tmp_path: Path, store: str,
                                                      sync: str) -> None:
    total, acked_count = 5000, 1200

    async def before_kill(url: str) -> tuple[list[int], set[int], set[int]]:
        async with AsyncClient.connect(url) as mq:
            ids = await mq.publish_many("orders", [f"order {i}".encode() for i in range(total)],
                                        batch_size=500)
            leased = await mq.get("orders", max=1000) + await mq.get("orders", max=1000)
            to_ack, held = leased[:acked_count], leased[acked_count:]
            # every ack is confirmed before the kill: none is in flight, so none is ambiguous
            await asyncio.gather(*(mq.ack(m) for m in to_ack))
            return ids, {m.msg_id for m in to_ack}, {m.msg_id for m in held}

    async def after_restart(url: str) -> list[tuple[int, int, bytes]]:
        async with AsyncClient.connect(url) as mq:
            got: list[tuple[int, int, bytes]] = []
            while batch := await mq.get("orders", max=1000):
                got += [(m.msg_id, m.deliveries, m.body) for m in batch]
                await asyncio.gather(*(mq.ack(m) for m in batch))
            return got

    db = tmp_path / "mq.db" if store == "sqlite" else request.getfixturevalue("pg_url")
    with BrokerProcess(db, "--sync", sync) as broker:
        ids, acked, held = asyncio.run(before_kill(broker.url))
        assert len(set(ids)) == total
        broker.kill()  # leases held at the kill become void; acks confirmed stay acked
        broker.start()
        delivered = asyncio.run(after_restart(broker.url))

    delivered_ids = [d[0] for d in delivered]
    assert len(delivered_ids) == len(set(delivered_ids))
    assert set(delivered_ids) == set(ids) - acked
    assert not acked & set(delivered_ids)
    deliveries = {msg_id: n for msg_id, n, _ in delivered}
    assert all(deliveries[i] == 2 for i in held)  # the void lease still counted
    assert all(deliveries[i] == 1 for i in set(ids) - acked - held)
    bodies = {msg_id: body for msg_id, _, body in delivered}
    assert bodies[ids[-1]] == f"order {total - 1}".encode()


def test_sigterm_shuts_down_cleanly_and_keeps_everything(tmp_path: Path) -> None:
    async def publish(url: str) -> list[int]:
        async with AsyncClient.connect(url) as mq:
            return await mq.publish_many("q", [b"x"] * 300)

    async def count(url: str) -> int:
        async with AsyncClient.connect(url) as mq:
            return int((await mq.stats("q"))["queues"]["q"]["ready"])

    with BrokerProcess(tmp_path / "mq.db") as broker:
        ids = asyncio.run(publish(broker.url))
        assert broker.stop() == 0
        wait_until(lambda: broker.logged("mq stopped"), "the broker logged 'mq stopped'")
        broker.start()
        assert asyncio.run(count(broker.url)) == len(ids)


def test_batch_acks_and_deliveries_survive_sigkill(tmp_path: Path) -> None:
    """An SQLite log keeps an mpub, a delivery and a batch ack as one row each (sqlite.py):
    after a SIGKILL the acked are gone, the leased come back counted, and HISTORY still tells
    each message's own life."""
    total = 3000

    async def before_kill(url: str) -> tuple[list[int], list[int], list[int]]:
        async with AsyncClient.connect(url) as mq:
            ids = await mq.publish_many("q", [b"%d" % i for i in range(total)], batch_size=1000)
            leased = await mq.get("q", max=1000) + await mq.get("q", max=1000)
            result = await mq.ack_many(leased[:1500])
            assert (result.acked, result.failed) == (1500, ())
            return ids, [m.msg_id for m in leased[:1500]], [m.msg_id for m in leased[1500:]]

    async def after_restart(url: str, acked: int, held: int) -> tuple[dict[int, tuple[int, bytes]],
                                                                       list[str], list[str]]:
        async with AsyncClient.connect(url) as mq:
            got: dict[int, tuple[int, bytes]] = {}
            while batch := await mq.get("q", max=1000):
                got.update((m.msg_id, (m.deliveries, m.body)) for m in batch)
                await mq.ack_many(batch)
            events = [[e["event"] for e in await mq.history(i)] for i in (acked, held)]
            return got, events[0], events[1]

    with BrokerProcess(tmp_path / "mq.db") as broker:
        ids, acked, held = asyncio.run(before_kill(broker.url))
        broker.kill()
        broker.start()
        got, acked_life, held_life = asyncio.run(after_restart(broker.url, acked[0], held[0]))

    assert set(got) == set(ids) - set(acked)
    assert {got[i][0] for i in held} == {2}  # the void lease still counted
    assert {got[i][0] for i in set(ids) - set(acked) - set(held)} == {1}
    assert got[ids[-1]][1] == b"%d" % (total - 1)
    assert acked_life == ["published", "leased", "acked"]
    assert held_life == ["published", "leased", "leased", "acked"]
