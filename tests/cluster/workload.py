"""The load every cluster scenario runs while its fault strikes: producers and a keyed consumer
group, through the SDK's seed-list URL, each step written to a `History`.

- Producers: one task per queue per producer, publishing a keyed message every `every_s`,
  at most `max_per_queue` each (bounded in count and time). The SDK adds the dedup id, follows
  MOVED and retries TRYAGAIN by itself; each publish is bounded by `PUBLISH_TIMEOUT_S`.
- Consumers: each says `hello`, joins every queue's group (protocol.md 4.2), and runs one task
  per queue: `get` up to `BATCH`, record each delivery, ack them in one batch, record the acks
  the broker confirmed. An ack whose reply never came (its broker died) is sent again once; if
  that fails too, or says LEASE_LOST (the first one may have been committed), the ack is in
  doubt and the log decides (the checker reads the brokers' history).
- After the fault the producers stop; then `drain` waits until every confirmed message is
  acked or its ack is in doubt (the bound passes first otherwise), and `read_leases` fetches
  the brokers' history of every message the run touched.

Errors the SDK surfaces are counted by class in `Workload.errors`, for the scenario's figures.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mq_client import AsyncClient, Message
from mq_client.errors import MQError

from tests.cluster.history import (
    AckConfirmed,
    Delivered,
    History,
    Lease,
    PublishConfirmed,
    PublishFailed,
    PublishSent,
    leases_from_events,
)

GROUP = "workers"
KEYS = 16
BATCH = 10
LEASE_S = 10.0  # long enough for a batch, short enough that a lost delivery returns in the run
HEARTBEAT_S = 1.0  # the default: 10 processes share 2 cores, so no tighter
PUBLISH_TIMEOUT_S = 20.0  # a takeover plus a retry or two
CALL_TIMEOUT_S = 20.0
DRAIN_WITHIN_S = LEASE_S + 30.0
HISTORY_READS_AT_ONCE = 16  # the broker's max_log_reads


def queue_names(count: int) -> list[str]:
    return [f"orders-{i}" for i in range(count)]


@dataclass
class Workload:
    url: str
    queues: Sequence[str]
    history: History = field(default_factory=History)
    errors: Counter[str] = field(default_factory=Counter)
    stop_producing: asyncio.Event = field(default_factory=asyncio.Event)
    stop_consuming: asyncio.Event = field(default_factory=asyncio.Event)
    ack_in_doubt: set[int] = field(default_factory=set)  # msg_ids: maybe acked, maybe not
    bodies: dict[int, bytes] = field(default_factory=dict)  # msg_id: its body, once delivered
    _last_doubt_at: float = 0.0  # monotonic
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    # --- producers -----------------------------------------------------------------------------

    async def produce(self, name: str, every_s: float, max_per_queue: int) -> None:
        async with AsyncClient.connect(self.url, reconnect=True) as mq:
            await asyncio.gather(*(self._produce_to(mq, name, q, every_s, max_per_queue)
                                   for q in self.queues))

    async def _produce_to(self, mq: AsyncClient, name: str, queue: str, every_s: float,
                          max_per_queue: int) -> None:
        for _ in range(max_per_queue):
            if self.stop_producing.is_set():
                return
            seq = next(self._seq)
            self.history.sent.append(PublishSent(name, seq, queue, time.time()))
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                    msg_id = await mq.publish(queue, f"{name}:{seq}".encode(),
                                              key=f"k{seq % KEYS}")
            except (MQError, TimeoutError) as e:
                self.errors[type(e).__name__] += 1
                self.history.failed.append(PublishFailed(name, seq, time.time(), repr(e)))
            else:
                self.history.confirmed.append(
                    PublishConfirmed(name, seq, queue, msg_id, time.time()))
            await asyncio.sleep(every_s)

    # --- consumers -----------------------------------------------------------------------------

    async def consume(self, name: str, joined: asyncio.Event | None = None) -> None:
        async with AsyncClient.connect(self.url, reconnect=True) as mq:
            await mq.hello(name, heartbeat_s=HEARTBEAT_S)
            for q in self.queues:
                await mq.join(q, GROUP, prefetch=BATCH * 2)
            if joined is not None:
                joined.set()
            await asyncio.gather(*(self._consume_from(mq, name, q) for q in self.queues))

    async def _consume_from(self, mq: AsyncClient, name: str, queue: str) -> None:
        while not self.stop_consuming.is_set():
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    msgs = await mq.get(queue, max=BATCH, wait_s=0.5, lease_s=LEASE_S)
            except (MQError, TimeoutError) as e:
                self.errors[type(e).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            now = time.time()
            for m in msgs:
                self.history.delivered.append(Delivered(name, m.msg_id, m.deliveries, now))
                self.bodies[m.msg_id] = m.body
            if msgs:
                await self._ack(mq, name, msgs)

    async def _ack(self, mq: AsyncClient, name: str, msgs: list[Message]) -> None:
        for attempt in range(2):
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    result = await mq.ack_many(msgs)
            except (MQError, TimeoutError) as e:
                self.errors[f"ack {type(e).__name__}"] += 1
                if attempt == 0:
                    continue
                self._doubt(m.msg_id for m in msgs)
                return
            failed = {f.receipt for f in result.failed}
            for f in result.failed:
                self.errors[f"ack failed {f.code}"] += 1
            if attempt == 1:
                self._doubt(m.msg_id for m in msgs if m.receipt in failed)
            now = time.time()
            for m in msgs:
                if m.receipt not in failed:
                    self.history.acked.append(AckConfirmed(name, m.msg_id, m.deliveries, now))
            return

    def duplicated_publishes(self) -> int:
        """Publishes stored under more than one msg_id (each body names one publish): what a
        retry without deduplication leaves behind. At least once allows them; the SDK's
        automatic dedup id should make them 0."""
        ids_per_body = Counter(self.bodies.values())
        return sum(n - 1 for n in ids_per_body.values() if n > 1)

    def _doubt(self, msg_ids: Iterable[int]) -> None:
        """These acks may or may not have been committed: if not, the message comes back once
        its lease ends, and is acked then; if so, only the brokers' log knows."""
        self.ack_in_doubt.update(msg_ids)
        self._last_doubt_at = time.monotonic()

    # --- after the fault -----------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every confirmed publish was acked, at most DRAIN_WITHIN_S; then stop the
        consumers. Call it once the producers are done (`stop_producing` and awaited)."""
        deadline = time.monotonic() + DRAIN_WITHIN_S
        while time.monotonic() < deadline:
            settled = self.history.acked_ids() | self.ack_in_doubt
            # A doubtful ack that was not committed comes back once its lease ends: wait that out.
            if (self.history.confirmed_ids() <= settled
                    and time.monotonic() > self._last_doubt_at + LEASE_S + 1):
                break
            await asyncio.sleep(0.25)
        self.stop_consuming.set()

    async def read_leases(self) -> list[Lease]:
        """Every lease the brokers logged for the messages this run published or saw."""
        ids = sorted(self.history.confirmed_ids() | {d.msg_id for d in self.history.delivered})
        leases: list[Lease] = []
        async with AsyncClient.connect(self.url, reconnect=True) as mq:
            for chunk in _chunks(ids, HISTORY_READS_AT_ONCE):
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    all_events = await asyncio.gather(*(mq.history(m) for m in chunk))
                for msg_id, events in zip(chunk, all_events, strict=True):
                    leases += leases_from_events(msg_id, events, LEASE_S)
        return leases


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
