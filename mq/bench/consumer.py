"""A consumer's load loop: lease up to `prefetch` messages, ack them, repeat.

A batch is acked with one batch `ack` (`ack_many`; the default), or, with `--ack each`, with one
`ack` per message, all in flight at once. The acks of one batch are in flight while the `get` of
the next one is: a two-stage pipeline, so the broker always has work from this connection. The
loop stops once the consumers together have received what the producers got confirmed (or the
prefilled count), at `duration_s`, on a stop request, or at `timeout_s`. Every message id
received is kept so the harness can count duplicates across consumers; a delivery with
`deliveries > 1` is a redelivery.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mq_client import AsyncClient, Message
from mq_client.errors import MQError

from mq.bench.options import STAMP_BYTES
from mq.bench.shared import Counter, Shared
from mq.bench.workers import WorkerResult, WorkerSpec

POLL_S = 0.1  # long-poll of an empty queue: also how late a consumer notices it is done


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
        acks: asyncio.Task[Acked] | None = None
        try:
            async with asyncio.timeout(spec.timeout_s):
                while not self._finished():
                    msgs = await self._get()
                    if msgs:
                        self._received(msgs)
                    if acks is not None:
                        self._settle(await acks)
                    acks = asyncio.create_task(self._ack(msgs)) if msgs else None
                if acks is not None:
                    self._settle(await acks)
        except TimeoutError:
            self._result.error(0, f"stopped by the {spec.timeout_s:g} s timeout")
        finally:
            if acks is not None and not acks.done():
                acks.cancel()
            self._shared.add(spec.slot, Counter.DONE, 1)

    def _finished(self) -> bool:
        if self._halted or self._shared.stop_requested:
            return True
        if self._stop_at_ns is not None and time.time_ns() >= self._stop_at_ns:
            return True
        shared = self._shared
        return shared.total(Counter.RECEIVED, shared.consumer_slots) >= shared.consumer_target()

    async def _get(self) -> list[Message]:
        try:
            return await self._client.get(self._spec.queue, wait_s=POLL_S,
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
