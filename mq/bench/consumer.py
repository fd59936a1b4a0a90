"""A consumer's load loop: receive messages, ack them, repeat.

Two ways to receive (`--consume`):

- **sub** (the default): one subscription with `prefetch` credit; the broker pushes messages as
  they are committed and more as acks free credit. What has arrived is taken at once, stamped
  as delivered, and its acks go out in a task of their own, so a delivery never waits for the
  consumer's earlier acks: publish -> deliver measures the broker, not the consumer's round
  trips. At most `prefetch` messages are unacked, so at most that many acks are in flight.
- **get**: lease up to `prefetch` messages with one `get`; the acks of one batch are in flight
  while the `get` of the next one is: a two-stage pipeline, so the broker always has work from
  this connection.

What was received at once is acked with one batch `ack` (`ack_many`; the default), or, with
`--ack each`, with one `ack` per message, all in flight at once. The loop stops once the
consumers together have received what the producers got confirmed (or the prefilled count), at
`duration_s`, on a stop request, or at `timeout_s`. Every message id received is kept so the
harness can count duplicates across consumers; a delivery with `deliveries > 1` is a
redelivery. A consumer of several queues (`--queues`) runs one such loop per queue, all at
once on its one client: `prefetch` is then per queue.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mq_client import AsyncClient, Message, Subscription
from mq_client.errors import MQError

from mq.bench.options import STAMP_BYTES
from mq.bench.shared import Counter, Shared
from mq.bench.workers import WorkerResult, WorkerSpec

POLL_S = 0.1  # long-poll of an empty queue: also how late a consumer notices it is done
CLOSE_TIMEOUT_S = 5.0  # unsubscribing at the end, outside the measured figures


@dataclass(frozen=True, slots=True)
class Acked:
    """How the acks of one batch went: messages acked and failed, the first failure, and
    whether it ended the connection."""

    acked: int
    failed: int = 0
    first_failure: str | None = None
    fatal: bool = False


class Consumer:
    """Receives and acks messages until the consumers together have them all."""

    def __init__(self, client: AsyncClient, spec: WorkerSpec, shared: Shared,
                 result: WorkerResult) -> None:
        self._client = client
        self._spec = spec
        self._shared = shared
        self._result = result
        self._halted = False
        self._stop_at_ns = (result.started_ns + int(spec.duration_s * 1e9)
                            if spec.duration_s is not None else None)

    async def run(self) -> None:
        spec = self._spec
        try:
            async with asyncio.timeout(spec.timeout_s), asyncio.TaskGroup() as loops:
                for queue in spec.queues:
                    loops.create_task(self._pushed(queue) if spec.consume == "sub"
                                      else self._polled(queue))
        except TimeoutError:
            self._result.error(0, f"stopped by the {spec.timeout_s:g} s timeout")
        finally:
            self._shared.add(spec.slot, Counter.DONE, 1)

    async def _polled(self, queue: str) -> None:
        acks: asyncio.Task[Acked] | None = None
        try:
            while not self._finished():
                msgs = await self._get(queue)
                if msgs:
                    self._received(msgs)
                if acks is not None:
                    self._settle(await acks)
                acks = asyncio.create_task(self._ack(msgs)) if msgs else None
            if acks is not None:
                self._settle(await acks)
        finally:
            if acks is not None and not acks.done():
                acks.cancel()

    async def _pushed(self, queue: str) -> None:
        try:
            sub = await self._client.subscribe(queue, prefetch=self._spec.prefetch)
        except MQError as exc:
            self._failed(1, f"subscribe: {exc}")
            return
        acks: set[asyncio.Task[Acked]] = set()
        try:
            while not self._finished():
                msgs = await self._take(sub)
                if msgs:
                    self._received(msgs)
                    acks.add(asyncio.create_task(self._ack(msgs)))
                for done in [t for t in acks if t.done()]:
                    acks.discard(done)
                    self._settle(done.result())
            for task in acks:
                self._settle(await task)
            acks.clear()
        finally:
            for task in acks:
                task.cancel()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await sub.close()
            except (TimeoutError, MQError) as exc:
                self._result.error(0, f"unsubscribe: {exc!r}")

    async def _take(self, sub: Subscription) -> list[Message]:
        """What the broker has pushed: waits up to POLL_S for the first message."""
        try:
            async with asyncio.timeout(POLL_S):
                msgs = await sub.batch(self._spec.prefetch)
        except TimeoutError:
            return []
        except MQError as exc:
            self._failed(1, f"subscription: {exc}")
            self._halted = True
            return []
        if not msgs:
            self._halted = True  # the subscription ended
        return msgs

    def _finished(self) -> bool:
        if self._halted or self._shared.stop_requested:
            return True
        if self._stop_at_ns is not None and time.time_ns() >= self._stop_at_ns:
            return True
        shared = self._shared
        return shared.total(Counter.RECEIVED, shared.consumer_slots) >= shared.consumer_target()

    async def _get(self, queue: str) -> list[Message]:
        try:
            return await self._client.get(queue, wait_s=POLL_S,
                                          max=self._spec.prefetch)
        except MQError as exc:
            self._failed(1, f"get: {exc}")
            if exc.fatal:
                self._halted = True
            return []

    def _received(self, msgs: list[Message]) -> None:
        now = time.time_ns()
        result = self._result
        for msg in msgs:
            result.msg_ids.append(msg.msg_id)
            if msg.deliveries > 1:
                result.redeliveries += 1
            if self._spec.stamped and len(msg.body) >= STAMP_BYTES:
                result.deliver.record(now - int.from_bytes(msg.body[:STAMP_BYTES], "big"))
        result.received += len(msgs)
        self._shared.add(self._spec.slot, Counter.RECEIVED, len(msgs))

    async def _ack(self, msgs: list[Message]) -> Acked:
        if self._spec.ack == "each":
            return await self._ack_each(msgs)
        try:
            result = await self._client.ack_many(msgs)
        except MQError as exc:
            return Acked(0, len(msgs), str(exc), exc.fatal)
        first = result.failed[0] if result.failed else None
        return Acked(result.acked, len(result.failed),
                     None if first is None else f"{first.receipt}: {first.error()}")

    async def _ack_each(self, msgs: list[Message]) -> Acked:
        outcomes = await asyncio.gather(*(self._client.ack(m) for m in msgs),
                                        return_exceptions=True)
        failures = [o for o in outcomes if o is not None]
        return Acked(len(outcomes) - len(failures), len(failures),
                     str(failures[0]) if failures else None,
                     any(isinstance(f, MQError) and f.fatal for f in failures))

    def _settle(self, acked: Acked) -> None:
        self._result.acked += acked.acked
        self._shared.add(self._spec.slot, Counter.ACKED, acked.acked)
        if acked.acked:
            self._result.last_ns = time.time_ns()
        if acked.failed:
            self._failed(acked.failed, f"ack: {acked.first_failure}")
        if acked.fatal:
            self._halted = True

    def _failed(self, n: int, what: str) -> None:
        self._result.error(n, what)
        self._shared.add(self._spec.slot, Counter.ERRORS, n)
