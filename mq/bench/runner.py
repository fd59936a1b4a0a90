"""One bench run from start to end: broker, preparation, workers, collection, report.

Order: measure the floor (if asked) while the machine is quiet; start a broker on a temp
database (unless `--url`); with `--queues` (or a seed list, or several pids) read the slot map
and pick the queues (per_broker.py); declare the queues and, for the consume scenario, prefill
them; open the
idle connections (if asked) between two readings of the broker's RSS; start the workers, wait
until every one is connected, then give the common start signal and begin the broker's CPU
window; collect every worker's result; read the broker's commit counters (each broker's, before
and after, for the per-broker figures); close the idle
connections; stop the broker and remove its directory. Every wait is bounded: workers enforce
their own duration and timeout, and the harness terminates any worker still alive `GRACE_S`
seconds after that.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from mq_client import AsyncClient
from mq_client.errors import MQError
from mq_client.url import parse_seeds

from mq.bench.broker import BrokerMonitor, LocalBroker
from mq.bench.floor import run_floor
from mq.bench.idle import IdleConnections
from mq.bench.options import BenchOptions
from mq.bench.per_broker import (
    Counters,
    Placement,
    listening_ports,
    pid_of,
    place,
    read_counters,
    rows,
)
from mq.bench.placement import share
from mq.bench.progress import Progress, Sample
from mq.bench.report import build_report
from mq.bench.shared import Shared
from mq.bench.workers import (
    START_TIMEOUT_S,
    Report,
    WorkerResult,
    WorkerSpec,
    run_async,
    run_worker,
    worker_process_main,
)

GRACE_S = 15.0  # beyond the timeout, before a worker process is terminated
CALL_TIMEOUT_S = 10.0  # declare and stats, outside the measured window
PREFILL_CHUNK = 10_000  # messages per publish_many call while prefilling
PREFILL_BATCH = 1_000  # bodies per mpub while prefilling
IDLE_SETTLE_S = 0.2  # after opening the idle connections, before reading the broker's RSS
PREFILL_SETTLE_S = 0.5  # after the prefill, before reading the broker's RSS
MB = 1e6
ByBroker = dict[str, Counters]  # broker address -> its counters at one moment
WARM_NOTE_EVERY = 100_000  # messages between two progress lines while warming


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """What the broker's `stats` says about itself (protocol.md section 6)."""

    sync: str | None
    commits: int | None
    committed_changes: int | None


def run_bench(opts: BenchOptions, log: TextIO | None = None) -> dict[str, Any]:
    """Run the scenario of `opts` and return the report (see report.py); notes go to `log`."""
    out = log if log is not None else sys.stderr
    floor = None
    if opts.floor:
        print(f"measuring the floor ({opts.floor_duration_s:g} s per figure) ...", file=out)
        floor = run_floor(opts.floor_duration_s, opts.data_dir)
    if opts.url is not None:
        pids = (opts.broker_pid,) if opts.broker_pid is not None else opts.broker_pids
        return _run(opts, opts.url, pids, False, floor, out)
    with LocalBroker(opts.sync, opts.data_dir) as broker:
        print(f"started a broker on {broker.url} (pid {broker.pid}, sync {opts.sync}, "
              f"db {broker.db_path})", file=out)
        report = _run(opts, broker.url, (broker.pid,), True, floor, out)
        if report["counts"]["errors"]:
            # What the broker said is the first clue to the errors; its database is about to go.
            report["broker_log_tail"] = list(broker.log)
        return report


def _run(opts: BenchOptions, url: str, pids: tuple[int, ...], started: bool,
         floor: dict[str, Any] | None, out: TextIO) -> dict[str, Any]:
    monitors = {pid: BrokerMonitor(pid) for pid in pids}
    for m in monitors.values():
        m.start()
    monitor = monitors[pids[0]] if len(pids) == 1 else None  # the figures of one broker
    idle = IdleConnections(url, opts.idle_connections)
    per_broker = opts.queues > 1 or len(parse_seeds(url)) > 1 or len(pids) > 1
    counted: tuple[Placement, ByBroker, ByBroker] | None = None
    try:
        placement = run_async(place(url, opts.queue, opts.queues)) if per_broker else None
        queues = placement.queues if placement is not None else (opts.queue,)
        run_async(_declare(url, queues))
        warm = _warm(opts, url, queues, out) if opts.warm else None
        prefill = (_prefill(opts, url, queues, out, monitor) if opts.scenario == "consume"
                   else None)
        idle_figures = _open_idle(idle, monitor, out) if opts.idle_connections else None
        before = run_async(_broker_stats(url, queues[0]))
        first = run_async(read_counters(url, placement)) if placement is not None else None
        expected = opts.count if prefill is None else int(prefill["messages"])
        results, failures, timeline = _run_workers(opts, url, queues, expected,
                                                   list(monitors.values()))
        after = run_async(_broker_stats(url, queues[0]))
        if placement is not None and first is not None:
            counted = (placement, first, run_async(read_counters(url, placement)))
    finally:
        idle.close()
        for m in monitors.values():
            m.stop()
    broker: dict[str, Any] = {
        "url": _shown(url), "started_by_bench": started,  # no secret
        "pid": pids[0] if len(pids) == 1 else None,
        "sync": after.sync or before.sync or (opts.sync if started else None),
        **_cpu_and_rss(list(monitors.values())),
        "commits": _delta(before.commits, after.commits),
        "committed_changes": _delta(before.committed_changes, after.committed_changes)}
    brokers = _per_broker_rows(counted, monitors) if counted is not None else None
    if brokers is not None:
        broker.update(pids=list(pids), commits=_sum(r["commits"] for r in brokers),
                      committed_changes=_sum(r["committed_changes"] for r in brokers))
    report = build_report(opts, broker, prefill, results, failures, floor, timeline,
                          idle_figures)
    report["warm"] = warm
    if brokers is not None:  # every broker's figures, and the commits of all of them
        report.update(queues=list(queues), brokers=brokers)
    return report


def _shown(url: str) -> str:
    """The URL without its secret; a seed list as mq://user@h1:p1,h2:p2."""
    seeds = parse_seeds(url)
    return ",".join([str(seeds[0]), *(f"{s.host}:{s.port}" for s in seeds[1:])])


def _cpu_and_rss(monitors: list[BrokerMonitor]) -> dict[str, float | None]:
    """CPU seconds over the window and RSS in MB of the brokers watched, summed over them."""
    cpus = [m.cpu_s for m in monitors]
    if not monitors:
        return {"cpu_s": None, "rss_start_mb": None, "rss_peak_mb": None}
    return {"cpu_s": None if None in cpus else sum(c or 0.0 for c in cpus),
            "rss_start_mb": sum(m.rss_start_bytes for m in monitors) / MB,
            "rss_peak_mb": sum(m.rss_peak_bytes for m in monitors) / MB}


def _per_broker_rows(counted: tuple[Placement, ByBroker, ByBroker],
                     monitors: dict[int, BrokerMonitor]) -> list[dict[str, Any]]:
    placement, before, after = counted
    ports = {pid: listening_ports(pid) for pid in monitors}
    pids = {addr: pid_of(addr, ports) for addr in placement.nodes}
    if len(monitors) == 1 and len(placement.nodes) == 1:
        pids = dict.fromkeys(placement.nodes, next(iter(monitors)))  # the only one there is
    cpu = {addr: monitors[pid].cpu_s if pid is not None else None for addr, pid in pids.items()}
    return rows(placement, before, after, cpu, pids)


def _sum(values: Any) -> int | None:
    known = list(values)
    return None if None in known else sum(known)


def _open_idle(idle: IdleConnections, monitor: BrokerMonitor | None, out: TextIO,
               ) -> dict[str, Any]:
    """Open the idle connections; the broker's RSS before and after (None without its pid) and
    the connections it counts then (the idle ones, plus the one that asks)."""
    before = monitor.rss_bytes() if monitor is not None else None
    print(f"opening {idle.count:,} idle connections ...", file=out)
    idle.open()
    time.sleep(IDLE_SETTLE_S)
    after = monitor.rss_bytes() if monitor is not None else None
    delta = after - before if before is not None and after is not None else None
    server = run_async(_server_stats(idle.url))
    return {"connections": idle.count, "open_s": idle.open_s,
            "broker_connections": server.get("connections"),
            "rss_before_mb": before / MB if before is not None else None,
            "rss_after_mb": after / MB if after is not None else None,
            "rss_delta_mb": delta / MB if delta is not None else None,
            "kb_per_connection": delta / 1e3 / idle.count if delta is not None else None}


def _delta(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None


async def _declare(url: str, queues: tuple[str, ...]) -> None:
    async with asyncio.timeout(CALL_TIMEOUT_S), AsyncClient.connect(url) as client:
        for queue_name in queues:  # created before the run, outside the measured window
            await client.declare(queue_name)


async def _server_stats(url: str) -> dict[str, Any]:
    async with asyncio.timeout(CALL_TIMEOUT_S), AsyncClient.connect(url) as client:
        server: dict[str, Any] = (await client.stats())["server"]
    return server


async def _broker_stats(url: str, queue_name: str) -> BrokerStats:
    """The broker's own counters; all None if it cannot tell (it may have died mid-run)."""
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S), AsyncClient.connect(url) as client:
            server = (await client.stats(queue_name))["server"]
    except (MQError, TimeoutError):
        return BrokerStats(None, None, None)
    return BrokerStats(server.get("sync"), server.get("commits"), server.get("committed_changes"))


def _shares(total: int, queues: tuple[str, ...]) -> list[tuple[str, int]]:
    """`total` messages split over `queues` as evenly as whole messages allow."""
    n = len(queues)
    return [(q, total // n + (1 if i < total % n else 0)) for i, q in enumerate(queues)]


def _warm(opts: BenchOptions, url: str, queues: tuple[str, ...], out: TextIO) -> dict[str, Any]:
    print(f"warming {_named(queues)}: {opts.warm:,} messages in and out ...", file=out)
    seconds = run_async(_pass_through(opts, url, queues, out))
    print(f"warmed in {seconds:.2f} s ({opts.warm / seconds:,.0f} msgs/s)", file=out)
    return {"messages": opts.warm, "seconds": seconds}


def _named(queues: tuple[str, ...]) -> str:
    return queues[0] if len(queues) == 1 else f"{len(queues)} queues"


async def _pass_through(opts: BenchOptions, url: str, queues: tuple[str, ...], out: TextIO,
                        ) -> float:
    """Publish, lease and ack `opts.warm` messages, a batch at a time, leaving none behind."""
    body = bytes(opts.size)
    started = time.perf_counter()
    next_note = WARM_NOTE_EVERY
    async with asyncio.timeout(opts.timeout_s), AsyncClient.connect(url) as client:
        done = 0
        for queue, share in _shares(opts.warm, queues):
            next_note = await _warm_one(client, queue, share, body, done, opts.warm, next_note,
                                        out)
            done += share
    return time.perf_counter() - started


async def _warm_one(client: AsyncClient, queue: str, share: int, body: bytes, done: int,
                    total: int, next_note: int, out: TextIO) -> int:
    """Pass `share` messages through `queue`; the progress line due next."""
    end = done + share
    while done < end:
        n = min(PREFILL_BATCH, end - done)
        await client.publish_many(queue, [body] * n, batch_size=PREFILL_BATCH)
        leased = 0
        while leased < n:
            msgs = await client.get(queue, max=n - leased)
            await client.ack_many([m.receipt for m in msgs])
            leased += len(msgs)
        done += n
        if done >= next_note:
            print(f"  {done:,} of {total:,}", file=out)
            next_note += WARM_NOTE_EVERY
    return next_note


def _prefill(opts: BenchOptions, url: str, queues: tuple[str, ...], out: TextIO,
             monitor: BrokerMonitor | None) -> dict[str, Any]:
    """Fill the queues; with the broker's pid, also what the queued messages cost it in RSS."""
    print(f"prefilling {_named(queues)} with {opts.count:,} messages ...", file=out)
    before = monitor.rss_bytes() if monitor is not None else None
    seconds = run_async(_publish_prefill(opts, url, queues))
    print(f"prefilled in {seconds:.2f} s ({opts.count / seconds:,.0f} msgs/s)", file=out)
    figures: dict[str, Any] = {"messages": opts.count, "seconds": seconds,
                               "msgs_per_s": opts.count / seconds}
    if monitor is not None and before is not None:
        time.sleep(PREFILL_SETTLE_S)
        after = monitor.rss_bytes()
        per_msg = (after - before) / opts.count
        figures.update(rss_before_mb=before / MB, rss_after_mb=after / MB,
                       rss_bytes_per_queued_msg=per_msg)
        print(f"broker rss {before / MB:.1f} -> {after / MB:.1f} MB with them queued: "
              f"{per_msg:,.0f} B per queued message of {opts.size:,} B", file=out)
    return figures


async def _publish_prefill(opts: BenchOptions, url: str, queues: tuple[str, ...]) -> float:
    body = bytes(opts.size)
    started = time.perf_counter()
    async with asyncio.timeout(opts.timeout_s), AsyncClient.connect(url) as client:
        for queue, share in _shares(opts.count, queues):
            for first in range(0, share, PREFILL_CHUNK):
                n = min(PREFILL_CHUNK, share - first)
                await client.publish_many(queue, [body] * n, batch_size=PREFILL_BATCH)
    return time.perf_counter() - started


def worker_specs(opts: BenchOptions, url: str, queues: tuple[str, ...] | None = None,
                 ) -> list[WorkerSpec]:
    """The producers (slots first) and consumers of a run, each with its share of `queues`
    (placement.share; the run's one queue by default)."""
    queues = (opts.queue,) if queues is None else queues
    specs: list[WorkerSpec] = []
    common: dict[str, Any] = {"url": url, "size": opts.size, "timeout_s": opts.timeout_s}
    if opts.has_producers:
        n = opts.producers
        for i in range(n):
            specs.append(WorkerSpec(
                "producer", i, i, queues=share(queues, n, i),
                count=opts.count // n + (1 if i < opts.count % n else 0),
                batch=opts.batch, inflight=opts.inflight, keys=opts.keys,
                rate=opts.rate / n if opts.rate else None,
                rate_offset_s=i / opts.rate if opts.rate else 0.0,
                duration_s=opts.duration_s, **common))
    if opts.has_consumers:
        first_slot = len(specs)
        for i in range(opts.consumers):
            specs.append(WorkerSpec(
                "consumer", i, first_slot + i, queues=share(queues, opts.consumers, i),
                prefetch=opts.prefetch, consume=opts.consume,
                ack=opts.ack,
                # In e2e consumers drain what was confirmed, so only producers stop at duration.
                duration_s=opts.duration_s if opts.scenario == "consume" else None,
                stamped=opts.scenario == "e2e", **common))
    return specs


def _run_workers(opts: BenchOptions, url: str, queues: tuple[str, ...], expected: int,
                 monitors: list[BrokerMonitor],
                 ) -> tuple[list[WorkerResult], list[str], list[Sample]]:
    specs = worker_specs(opts, url, queues)
    producers = sum(1 for s in specs if s.role == "producer")
    shared = Shared.create(producers, len(specs) - producers, expected)
    progress = Progress(shared, sys.stderr if opts.progress else None)

    def begin() -> None:
        for monitor in monitors:
            monitor.mark_start()
        progress.start()
        shared.start.set()

    try:
        if len(specs) == 1:
            results, failures = _inline(specs[0], shared, begin)
        else:
            results, failures = _in_processes(specs, shared, begin, opts.timeout_s)
    finally:
        for monitor in monitors:
            monitor.mark_end()
        progress.stop()
    return results, failures, progress.timeline


def _inline(spec: WorkerSpec, shared: Shared, begin: Callable[[], None],
            ) -> tuple[list[WorkerResult], list[str]]:
    try:
        return [run_worker(spec, shared, begin)], []
    except Exception:
        return [], [f"{spec.role} {spec.index} failed:\n{traceback.format_exc()}"]


def _in_processes(specs: list[WorkerSpec], shared: Shared, begin: Callable[[], None],
                  timeout_s: float) -> tuple[list[WorkerResult], list[str]]:
    fleet = _Fleet(specs, shared)
    try:
        if fleet.collect("ready", START_TIMEOUT_S) == len(specs):
            begin()
            fleet.collect("done", timeout_s + GRACE_S)
    finally:
        fleet.stop()
    return fleet.results, fleet.failures


class _Fleet:
    """Worker processes, each in its own spawned interpreter, and what they report back."""

    def __init__(self, specs: list[WorkerSpec], shared: Shared) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._shared = shared
        self._reports: multiprocessing.Queue[Report] = ctx.Queue()
        self._procs = {s.slot: ctx.Process(target=worker_process_main,
                                           args=(s, shared, self._reports),
                                           name=f"mq-bench-{s.role}-{s.index}", daemon=True)
                       for s in specs}
        self._names = {s.slot: f"{s.role} {s.index}" for s in specs}
        self._failed: set[int] = set()
        self.results: list[WorkerResult] = []
        self.failures: list[str] = []
        for proc in self._procs.values():
            proc.start()

    def collect(self, wanted: str, limit_s: float) -> int:
        """Read reports until every live worker has sent `wanted`; returns how many did.

        A worker that fails, dies without a word, or is silent beyond `limit_s` seconds is a
        failure, and the others are asked to stop.
        """
        deadline = time.monotonic() + limit_s
        got: set[int] = set()
        while missing := set(self._procs) - got - self._failed:
            left_s = deadline - time.monotonic()
            try:
                kind, slot, payload = self._reports.get(timeout=min(1.0, max(left_s, 0.01)))
            except queue.Empty:
                for s in missing:
                    code = self._procs[s].exitcode
                    if left_s <= 0:
                        self._fail(s, "did not report in time")
                    elif code is not None:
                        self._fail(s, f"exited with code {code} without a report")
                continue
            if kind == "failed":
                self._fail(slot, f"failed:\n{payload}")
                continue
            if kind == "done":  # also when it finished before the others were ready
                self.results.append(payload)
            if kind == wanted:
                got.add(slot)
        return len(got)

    def _fail(self, slot: int, what: str) -> None:
        self._failed.add(slot)
        self.failures.append(f"{self._names[slot]} {what}")
        self._shared.request_stop()

    def stop(self) -> None:
        """Ask every worker to stop, then join them; terminate those that do not stop in time."""
        self._shared.request_stop()
        self._shared.start.set()  # a worker still waiting for the start leaves at once
        for proc in self._procs.values():
            proc.join(GRACE_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(GRACE_S)
