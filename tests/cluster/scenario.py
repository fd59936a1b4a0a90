"""One cluster scenario: the workload runs, a fault strikes while it does, then the queues are
drained, the brokers' leases read back, and the history judged.

`run_scenario(name, url, nemesis, ...)` starts the consumers (each joins every queue's group),
then the producers, runs `nemesis(history)` (a coroutine that strikes, notes its broker faults
in the history and returns; it must be bounded), drains, and returns a `Report`: the checker's
verdict, the recovery after each broker fault the nemesis recorded, and the SDK errors seen.
Blocking process work (a restart that waits for a log line) goes through `asyncio.to_thread`, so
the clients' heartbeats keep going meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.cluster.brokers import Cluster
from tests.cluster.history import History, Recovery, Verdict, check, recovery
from tests.cluster.workload import Workload, queue_names

QUEUES = 16  # on 1,024 slots, a given broker of 3 owns none of them once in 650 runs
PRODUCERS = 2
CONSUMERS = 3
PUBLISH_EVERY_S = 0.2  # per queue per producer: 160 msgs/s in all, light on 2 cores
START_WITHIN_S = 60.0
# A scenario's bound, engines' start and the drain included, on top of its own fault time.
SCENARIO_TIMEOUT_S = 240

Nemesis = Callable[[History], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    verdict: Verdict
    recovery: Recovery
    duplicated_publishes: int
    errors: dict[str, int]
    seconds: float

    def line(self) -> str:
        """The scenario's figures for the closing note, on one line."""
        return (f"{self.name}: {self.verdict.summary()}; {self.recovery}; "
                f"duplicated publishes {self.duplicated_publishes}; "
                f"SDK errors {self.errors or 'none'}; {self.seconds:.0f} s")


async def run_scenario(name: str, url: str, nemesis: Nemesis, duration_s: float) -> Report:
    """Load the brokers at `url` (a seed list) for about `duration_s` while `nemesis` strikes;
    judge the history."""
    t0 = time.monotonic()
    queues = queue_names(QUEUES)
    w = Workload(url, queues)
    joined = [asyncio.Event() for _ in range(CONSUMERS)]
    consumers = [asyncio.create_task(w.consume(f"w{i}", joined[i])) for i in range(CONSUMERS)]
    async with asyncio.timeout(START_WITHIN_S):
        await _until_joined(joined, consumers)
    per_queue = int(duration_s / PUBLISH_EVERY_S)  # the bound; the nemesis's end stops them first
    producers = [asyncio.create_task(w.produce(f"p{i}", PUBLISH_EVERY_S, per_queue))
                 for i in range(PRODUCERS)]
    async with asyncio.timeout(duration_s + 60):
        await nemesis(w.history)
    w.stop_producing.set()
    async with asyncio.timeout(60):
        await asyncio.gather(*producers)  # their last publishes are confirmed or failed
        await w.drain()
        await asyncio.gather(*consumers)
    leases = await w.read_leases()
    return Report(name, check(w.history, leases), recovery(w.history, queues),
                  w.duplicated_publishes(), dict(w.errors), time.monotonic() - t0)


async def _until_joined(joined: list[asyncio.Event], consumers: list[asyncio.Task[None]]) -> None:
    """Wait until every consumer joined its groups; a consumer that failed first raises here."""
    for event, task in zip(joined, consumers, strict=True):
        waiter = asyncio.ensure_future(event.wait())
        done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task in done:
            task.result()  # its exception, or it ended before joining
            raise AssertionError("a consumer ended before it joined its groups")


async def in_thread(work: Callable[[], object]) -> None:
    """Run blocking process work (a kill, a restart waiting for a log line) off the loop."""
    await asyncio.to_thread(work)


def judge(report: Report, cluster: Cluster, figures: list[str]) -> None:
    """Note the scenario's figures, then fail it on anything the checker found or on a queue
    never served again after a fault (with the brokers' logs)."""
    figures.append(report.line())
    print(report.line())
    assert report.verdict.ok, f"{report.verdict.summary()}\n{cluster.logs()}"
    assert report.verdict.confirmed > 0, "nothing was confirmed at all"
    assert all(t < float("inf") for t in report.recovery.times_s), (
        f"a queue was never served again after a fault: {report.recovery}\n{cluster.logs()}")
