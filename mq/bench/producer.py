"""A producer's load loop: closed loop (as fast as confirmations allow) or open loop (`rate`).

Closed loop: a few lanes, each one task that claims the next messages, publishes them and awaits
the confirmation before claiming more. Without keys and with batch > 1 a request is one `mpub`
of `batch` bodies and `inflight` lanes keep that many in flight; with keys (which `mpub` cannot
carry) a request is one `pub` and `batch` lanes make the pipeline that deep; batch 1 without
keys is one lane of `pub`: strictly one at a time.

Open loop: message i is due at start + i / rate. A request goes out when its last message is
due (so batching shows up as latency, as it would for a real producer), launched by the pacer
without waiting for earlier confirmations. Latencies count from the scheduled times.

Bodies start with their scheduled (open loop) or send (closed loop) time, time.time_ns() as 8
bytes big-endian, so consumers can measure publish -> deliver.
"""

from __future__ import annotations

import asyncio
import math
import time

from mq_client import AsyncClient
from mq_client.errors import MQError

from mq.bench.options import STAMP_BYTES
from mq.bench.pacer import Pacer
from mq.bench.shared import Counter, Shared
from mq.bench.workers import WorkerResult, WorkerSpec


class Producer:
    """Publishes `spec.count` messages (or fewer, if `duration_s` or `timeout_s` ends it first)."""

    def __init__(self, client: AsyncClient, spec: WorkerSpec, shared: Shared,
                 result: WorkerResult) -> None:
        self._client = client
        self._spec = spec
        self._shared = shared
        self._result = result
        self._pad = bytes(max(0, spec.size - STAMP_BYTES))
        self._keys = [f"k{i}" for i in range(spec.keys)]
        self._per_request = spec.batch if spec.keys == 0 else 1
        self._queues = spec.queues
        self._claimed = 0  # messages handed to a request so far
        self._halted = False  # the connection broke, or the loop is being torn down
        self._stop_at_ns = (result.started_ns + int(spec.duration_s * 1e9)
                            if spec.duration_s is not None else None)
        self._sends: asyncio.TaskGroup | None = None  # open loop: the in-flight requests

    async def run(self) -> None:
        spec = self._spec
        try:
            async with asyncio.timeout(spec.timeout_s):
                if spec.rate is None:
                    await self._closed_loop()
                else:
                    await self._open_loop(spec.rate)
        except TimeoutError:
            self._result.error(0, f"stopped by the {spec.timeout_s:g} s timeout")
        finally:
            self._halted = True
            unanswered = self._result.sent - self._result.confirmed - self._result.errors
            if unanswered > 0:
                self._failed(unanswered, "no confirmation before the producer stopped")
            self._shared.add(spec.slot, Counter.DONE, 1)

    def _stopping(self) -> bool:
        return (self._halted or self._shared.stop_requested
                or (self._stop_at_ns is not None and time.time_ns() >= self._stop_at_ns))

    def _claim(self) -> tuple[int, int]:
        """The first index and number of the next request's messages (0 when all are claimed)."""
        first = self._claimed
        n = min(self._per_request, self._spec.count - first)
        self._claimed += n
        return first, n

    # -- closed loop ---------------------------------------------------------------------------

    async def _closed_loop(self) -> None:
        spec = self._spec
        if spec.keys:
            lanes = spec.batch
        elif spec.batch > 1:
            lanes = spec.inflight
        else:
            lanes = 1
        async with asyncio.TaskGroup() as lanes_group:
            for _ in range(lanes):
                lanes_group.create_task(self._lane())

    async def _lane(self) -> None:
        while not self._stopping():
            first, n = self._claim()
            if n == 0:
                return
            await self._send(first, n, time.time_ns(), 0)

    # -- open loop -----------------------------------------------------------------------------

    async def _open_loop(self, rate: float) -> None:
        spec = self._spec
        interval_ns = 1e9 / rate
        t0 = self._result.started_ns + int(spec.rate_offset_s * 1e9)
        per = self._per_request
        requests = math.ceil(spec.count / per)

        def message_due(i: int) -> int:
            return t0 + int(i * interval_ns)

        def request_due(k: int) -> int:
            return message_due(min((k + 1) * per, spec.count) - 1)

        def fire(due: int) -> None:
            # Runs on the loop, called by the pacer: launch every request due by now.
            if self._halted or self._sends is None:
                return
            now = time.time_ns()
            while self._claimed < spec.count and self._claimed < due * per:
                first, n = self._claim()
                self._result.send_lag.record(now - request_due(first // per), n)
                self._sends.create_task(self._send(first, n, message_due(first),
                                                   int(interval_ns)))

        pacer = Pacer(asyncio.get_running_loop(), requests, request_due, fire, self._stopping)
        try:
            async with asyncio.TaskGroup() as sends:
                self._sends = sends
                pacer.start()
                await pacer.done.wait()
        finally:
            self._halted = True
            pacer.join(1.0)

    # -- one request ---------------------------------------------------------------------------

    async def _send(self, first: int, n: int, t0_ns: int, step_ns: int) -> None:
        """Publish messages first .. first+n-1, scheduled at t0_ns + j * step_ns (ns)."""
        spec = self._spec
        if step_ns == 0:
            bodies = [self._body(t0_ns)] * n
        else:
            bodies = [self._body(t0_ns + j * step_ns) for j in range(n)]
        self._result.sent += n
        self._shared.add(spec.slot, Counter.SENT, n)
        queue = self._queues[first // self._per_request % len(self._queues)]  # each request in turn
        try:
            if n > 1:
                await self._client.publish_many(queue, bodies, batch_size=n)
            else:
                key = self._keys[first % len(self._keys)] if self._keys else None
                await self._client.publish(queue, bodies[0], key)
        except MQError as exc:
            self._failed(n, str(exc))
            if exc.fatal:
                self._halted = True
            return
        now = time.time_ns()
        self._result.confirmed += n
        self._result.last_ns = now
        self._shared.add(spec.slot, Counter.CONFIRMED, n)
        if step_ns == 0:
            self._result.confirm.record(now - t0_ns, n)
        else:
            for j in range(n):
                self._result.confirm.record(now - t0_ns - j * step_ns)

    def _body(self, stamp_ns: int) -> bytes:
        if self._spec.size < STAMP_BYTES:
            return bytes(self._spec.size)
        return stamp_ns.to_bytes(STAMP_BYTES, "big") + self._pad

    def _failed(self, n: int, what: str) -> None:
        self._result.error(n, what)
        self._shared.add(self._spec.slot, Counter.ERRORS, n)
