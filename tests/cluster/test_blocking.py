"""The blocking `Client` on a seed list, against a real 3-broker cluster: each queue's requests go
to its broker, a batch ack over queues of three brokers is split by slot, the session is one
name on every broker, and after `mq cluster drain` a request sent by the stale map is answered
MOVED, followed, and served by the new owner."""

from __future__ import annotations

import pytest
from mq_client import Client
from mq_client.slots import slot_of, slot_of_id

from tests.cluster.brokers import Cluster

PER_QUEUE = 5


def _one_queue_per_broker(mq: Client) -> dict[str, str]:
    """node -> a queue whose slot that node serves now."""
    owner = {}
    for first, last, node, _addr in mq.cluster()["slots"]:
        owner.update(dict.fromkeys(range(first, last + 1), node))
    queues: dict[str, str] = {}
    j = 0
    while len(queues) < 3:
        queues.setdefault(owner[slot_of(f"bq{j}")], f"bq{j}")
        j += 1
    return queues


def _published_at(cluster: Cluster, node: str, queue: str) -> int:
    """What the broker `node` itself says its queue `queue` published (one broker, no routing)."""
    with Client.connect(f"mq://{cluster.brokers[node].addr}") as one:
        return int(one.stats(queue)["queues"][queue]["published"])


@pytest.mark.timeout(240)
def test_the_blocking_client_routes_by_slot_and_follows_moved_after_a_drain(
        settled_cluster: Cluster) -> None:
    cluster = settled_cluster
    with Client.connect(cluster.seeds, timeout_s=30) as mq:
        queues = _one_queue_per_broker(mq)
        assert sorted(queues) == ["b1", "b2", "b3"]
        for queue in queues.values():
            first = mq.publish(queue, b"one")
            rest = mq.publish_many(queue, [b"more"] * (PER_QUEUE - 1))
            assert {slot_of_id(i) for i in [first, *rest]} == {slot_of(queue)}
        for node, queue in queues.items():
            assert _published_at(cluster, node, queue) == PER_QUEUE  # stored at its owner

        mq.hello("blocking-worker", heartbeat_s=1.0)
        leased = [m for queue in queues.values() for m in mq.get(queue, max=PER_QUEUE)]
        assert len(leased) == 3 * PER_QUEUE
        result = mq.ack_many(leased)  # receipts of three slots on three brokers
        assert (result.acked, result.failed) == (3 * PER_QUEUE, ())

        # Drain b1; the client's map still sends b1's queue there, and b1 answers MOVED.
        queue = queues["b1"]
        mq.join(queue, "cooks")
        old = mq._link.map.addr(slot_of(queue))
        assert old == cluster.brokers["b1"].addr
        cluster.drain("b1")
        cluster.wait_moves_done(lambda owned: owned.get("b1", 0) == 0)
        assert mq._link.map.addr(slot_of(queue)) == old  # not read again yet
        msg_id = mq.publish(queue, b"after the drain")
        new = mq._link.map.addr(slot_of(queue))
        assert new is not None and new != old
        new_node = next(n for n, b in cluster.brokers.items() if b.addr == new)
        # Counters count from when a broker took the queue: the new owner stored just this one.
        assert _published_at(cluster, new_node, queue) == 1

        # The session and its group followed the queue to its new broker.
        [msg] = mq.get(queue, wait_s=5)
        assert (msg.msg_id, msg.body) == (msg_id, b"after the drain")
        mq.ack(msg)
        assert mq.stats(queue)["queues"][queue]["acked"] == 1  # routed to the new owner too
