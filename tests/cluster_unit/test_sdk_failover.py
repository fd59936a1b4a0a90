"""The SDK against two real brokers of one cluster: one client on a seed list publishes to
queues of both brokers, consumes them in a session as a group member, and goes on when a
broker is killed with SIGKILL: every confirmed publish is delivered, nothing acked comes back,
a message leased from the killed broker is still the consumer's (its ack works at the new
broker), and the group is joined again where its queue went."""

from __future__ import annotations

import asyncio
import time

from mq_client import AsyncClient

from mq.cluster.slots import SLOTS, slot_of
from tests.cluster_unit.test_brokers import (  # noqa: F401 (brokers: a fixture)
    brokers,
    owners,
    server_stats,
    until,
)
from tests.harness import BrokerProcess, TextSession

QUEUES = [f"orders.{i}" for i in range(12)]
ROUNDS = 3
WITHIN_S = 60.0


def settled(running: dict[str, BrokerProcess]) -> tuple[str, str]:
    """Once both brokers serve every slot between them: a queue b2 owns, and the seed list."""
    b1 = TextSession(running["b1"].port)
    until(lambda: len(owners(b1)) == SLOTS and len(set(owners(b1).values())) == 2, "the map")
    until(lambda: sum(int(str(server_stats(p)["slots_owned"])) for p in running.values()) == SLOTS,
          "every slot served")
    at_b2 = next(q for q in QUEUES if owners(b1)[slot_of(q)] == "b2")
    return at_b2, ",".join(f"127.0.0.1:{p.port}" for p in running.values())


def test_a_client_on_a_seed_list_rides_out_a_broker_kill(brokers: dict[str, BrokerProcess]) -> None:  # noqa: F811
    at_b2, seeds = settled(brokers)

    async def scenario() -> tuple[set[bytes], list[bytes], set[bytes]]:
        confirmed: set[bytes] = set()
        acked: set[bytes] = set()
        seen: list[bytes] = []
        async with AsyncClient.connect(f"mq://{seeds}", takeover_timeout_s=30.0) as client:
            await client.hello("worker", heartbeat_s=0.5)
            for q in QUEUES:  # a group member on every queue: it joins again where one moves
                await client.join(q, "workers")
            for n in range(ROUNDS):
                for q in QUEUES:
                    body = f"{q}#{n}".encode()
                    await client.publish(q, body)
                    confirmed.add(body)
                if n == 0:
                    (held,) = await client.get(at_b2)  # leased at b2, acked after its death
                    seen.append(held.body)
                    brokers["b2"].kill()  # the next round's half of the queues must move
                    await client.ack(held)  # at b1, which took the lease over with the slot
                    acked.add(held.body)
                for q in QUEUES:
                    for msg in await client.get(q, max=10, wait_s=0.05):
                        seen.append(msg.body)
                        await client.ack(msg)
                        acked.add(msg.body)
            deadline = time.monotonic() + WITHIN_S
            while confirmed - acked and time.monotonic() < deadline:
                for q in QUEUES:
                    for msg in await client.get(q, max=10, wait_s=0.05):
                        seen.append(msg.body)
                        await client.ack(msg)
                        acked.add(msg.body)
            moved = (await client.stats(at_b2))["queues"][at_b2]  # now at b1
            assert set(moved["group"]["members"]) == {"worker"}
        return confirmed, seen, acked

    confirmed, seen, acked = asyncio.run(scenario())
    assert confirmed <= acked, sorted(confirmed - acked)[:5]
    # Each delivery was acked at once, so a body seen twice would be one delivered after its
    # ack, or a publish stored twice by a retry (its automatic dedup id prevents that).
    assert len(seen) == len(set(seen))


def test_a_subscription_follows_its_queue_when_its_broker_dies(
        brokers: dict[str, BrokerProcess]) -> None:  # noqa: F811
    at_b2, seeds = settled(brokers)

    async def scenario() -> list[bytes]:
        got: list[bytes] = []
        async with AsyncClient.connect(f"mq://{seeds}", takeover_timeout_s=30.0) as client:
            await client.hello("pusher", heartbeat_s=0.5)
            sub = await client.subscribe(at_b2, prefetch=10)
            await client.publish(at_b2, b"before")
            async with asyncio.timeout(WITHIN_S):
                msg = await anext(aiter(sub))
                await client.ack(msg)
                got.append(msg.body)
                brokers["b2"].kill()
                await client.publish(at_b2, b"after")  # waits out the takeover
                msg = await anext(aiter(sub))  # pushed by b1, once subscribed there again
                await client.ack(msg)
                got.append(msg.body)
            await sub.close()
        return got

    assert asyncio.run(scenario()) == [b"before", b"after"]
