"""One load worker (a producer or a consumer): its spec, its result, and how it runs.

A worker connects with the SDK's `AsyncClient`, says it is ready, waits for the common start
signal, runs its load loop and returns a `WorkerResult`. A lone worker runs inside the harness
process; with more than one, each gets a spawned process of its own (`worker_process_main`) so
the harness is never the bottleneck, and results come back through a queue.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import traceback
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any, TypeVar

from mq_client import AsyncClient

from mq.bench.histogram import Histogram
from mq.bench.shared import Shared

T = TypeVar("T")

START_TIMEOUT_S = 60.0  # a worker gives up if the start signal does not come within this
MAX_ERROR_SAMPLES = 5  # error messages kept per worker, for the report


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker does. Counts are messages, sizes bytes, times seconds.

    `count` is this producer's share of the messages. `rate` is this producer's rate in msgs/s
    (open loop) and `rate_offset_s` shifts its schedule so that producers interleave.
    `duration_s` stops the worker's load loop; `timeout_s` is the hard limit on everything.
    `queues` are this worker's queues: a producer sends its requests to them in turn, a
    consumer receives from all of them at once.
    """

    role: str  # "producer" or "consumer"
    index: int
    slot: int
    url: str
    queues: tuple[str, ...]
    size: int
    timeout_s: float
    count: int = 0
    batch: int = 1
    inflight: int = 1
    keys: int = 0
    rate: float | None = None
    rate_offset_s: float = 0.0
    prefetch: int = 1
    consume: str = "sub"  # consumers: "sub" (pushed by the broker) or "get" (one get at a time)
    ack: str = "batch"  # consumers: "batch" (one ack_many at a time) or "each" (one ack a message)
    duration_s: float | None = None
    stamped: bool = False  # consumers: bodies carry their publish time (e2e)


@dataclass(slots=True)
class WorkerResult:
    """What one worker did. Times are time.time_ns() values; latencies are nanoseconds."""

    role: str
    index: int
    sent: int = 0
    confirmed: int = 0
    received: int = 0
    acked: int = 0
    errors: int = 0
    redeliveries: int = 0
    started_ns: int = 0
    last_ns: int = 0  # the last confirmation (producers) or the last ack (consumers)
    cpu_s: float = 0.0
    confirm: Histogram = field(default_factory=Histogram)  # publish -> confirmation
    deliver: Histogram = field(default_factory=Histogram)  # publish -> delivery
    send_lag: Histogram = field(default_factory=Histogram)  # scheduled -> actual send
    msg_ids: array[int] = field(default_factory=lambda: array("q"))
    error_samples: list[str] = field(default_factory=list)

    def error(self, messages: int, what: str) -> None:
        """Count `messages` failed messages (or requests) and keep the first few reasons."""
        self.errors += messages
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{self.role} {self.index}: {what}")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when installed (as the broker does), asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(main)
    return uvloop.run(main)


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


async def _work(spec: WorkerSpec, shared: Shared, on_ready: Callable[[], None]) -> WorkerResult:
    # Imported here: a spawned process imports this module first, and these pull in the loops.
    from mq.bench.consumer import Consumer
    from mq.bench.producer import Producer

    result = WorkerResult(spec.role, spec.index)
    async with AsyncClient.connect(spec.url) as client:
        on_ready()
        if not await asyncio.to_thread(shared.start.wait, START_TIMEOUT_S):
            result.error(0, "the start signal never came")
            return result
        cpu0 = _cpu_s()
        result.started_ns = time.time_ns()
        if spec.role == "producer":
            await Producer(client, spec, shared, result).run()
        else:
            await Consumer(client, spec, shared, result).run()
        result.cpu_s = _cpu_s() - cpu0
    return result


def run_worker(spec: WorkerSpec, shared: Shared, on_ready: Callable[[], None]) -> WorkerResult:
    """Run one worker in this process; `on_ready` is called once it is connected."""
    return run_async(_work(spec, shared, on_ready))


Report = tuple[str, int, Any]  # ("ready" | "done" | "failed", slot, None | WorkerResult | str)


def worker_process_main(spec: WorkerSpec, shared: Shared, reports: Queue[Report]) -> None:
    """Entry point of a worker process: reports "ready", then "done" with its result or "failed"."""
    # Ctrl-C reaches the whole process group; the harness decides how its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = run_worker(spec, shared, lambda: reports.put(("ready", spec.slot, None)))
    except BaseException:
        reports.put(("failed", spec.slot, traceback.format_exc()))
        raise
    reports.put(("done", spec.slot, result))
