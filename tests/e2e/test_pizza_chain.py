"""The pizza chain, end to end with real processes: a broker, three workers in one group, 600
orders keyed by 30 stores; one worker is SIGKILLed (or SIGSTOPped) while it holds leases.

The visibility timeout is 60 s, so only the liveness monitor can save the dead worker's orders
within the test's time. Pass: every order is acked exactly once by a live worker or was in
flight on the dead one; the broker gives the dead worker's unfinished orders back within the
heartbeat deadline (the time of the release in its log, not when a busy survivor next asks)
and they all go to survivors; no order a survivor started is ever delivered to another worker.

An ack in flight when the victim stops is ambiguous: the broker may have committed it, or not,
and the victim's log cannot tell (it writes ACKING before the ack and ACK after the reply). The
test does not guess: it asks the broker how that lease ended (HISTORY), and counts the order as
acked by the victim only when the lease ended in `acked`; otherwise it must come back to a
survivor like any other unfinished order. A GET in flight is ambiguous the same way (the broker
leased orders the victim never logged), so which orders the broker took back from the victim is
read from its log too: the `released (holder died)` events.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mq_client import Client

from tests.harness import BrokerProcess, wait_until

ORDERS, STORES = 600, 30
HEARTBEAT_S, GRACE_S = 0.4, 0.8  # short, yet safe on a busy 2-core machine
ROOT = Path(__file__).parents[2]


@dataclass
class WorkerLog:
    leases: list[tuple[float, int, int, str]] = field(default_factory=list)
    starts: list[tuple[float, int, int, str]] = field(default_factory=list)
    acking: dict[int, int] = field(default_factory=dict)  # msg_id -> the delivery being acked
    acks: dict[int, float] = field(default_factory=dict)
    joined: bool = False
    last: str = ""  # the kind of the last line: START while an order is being made

    def unconfirmed_acks(self) -> dict[int, int]:
        """Acks sent (or about to be) whose reply never came: msg_id -> delivery."""
        return {m: d for m, d in self.acking.items() if m not in self.acks}


def read_log(path: Path) -> WorkerLog:
    log = WorkerLog()
    if not path.exists():
        return log
    for line in path.read_text().splitlines():
        parts = line.split()
        log.last = parts[0]
        if parts[0] == "JOINED":
            log.joined = True
        elif parts[0] in ("LEASE", "START"):
            entry = (float(parts[1]), int(parts[2]), int(parts[3]), parts[4])
            (log.leases if parts[0] == "LEASE" else log.starts).append(entry)
        elif parts[0] == "ACKING":
            log.acking[int(parts[2])] = int(parts[3])
        elif parts[0] == "ACK":
            log.acks[int(parts[2])] = float(parts[1])
    return log


def lease_end(events: list[dict[str, Any]], delivery: int) -> str | None:
    """The event that ended lease `delivery` of a message (`acked`, `released (holder died)`,
    ...), from its HISTORY; None while that lease is still held."""
    after = itertools.dropwhile(
        lambda e: (e["event"], e.get("delivery")) != ("leased", delivery), events)
    if next(after, None) is None:
        raise AssertionError(f"no lease {delivery} in the history {events}")
    return next((str(e["event"]) for e in after), None)


def acked_at_the_broker(url: str, unconfirmed: dict[int, int]) -> set[int]:
    """Which of the `unconfirmed` acks (msg_id -> delivery) the broker committed. A lease whose
    holder died ends within the grace period, so each is asked about until its lease ended."""
    with Client.connect(url, timeout_s=5) as mq:

        def end_of(msg_id: int, delivery: int) -> str:
            return wait_until(lambda: lease_end(mq.history(msg_id), delivery),
                              f"lease {msg_id}.{delivery} ended", timeout_s=20)

        ends = {msg_id: end_of(msg_id, delivery) for msg_id, delivery in unconfirmed.items()}
    return {msg_id for msg_id, end in ends.items() if end == "acked"}


def releases(url: str, msg_ids: set[int]) -> dict[int, float]:
    """Which of `msg_ids` the broker gave back from a dead holder, and when (Unix s, HISTORY)."""
    found: dict[int, float] = {}
    with Client.connect(url, timeout_s=5) as mq:
        for msg_id in msg_ids:
            events = mq.history(msg_id)
            times = [e["at"] for e in events if e["event"] == "released (holder died)"]
            assert len(times) <= 1, f"order {msg_id} was released more than once: {events}"
            if times:
                found[msg_id] = float(times[0])
    return found


def stopped(proc: subprocess.Popen[bytes]) -> bool:
    """SIGSTOP lands asynchronously: the process is stopped once /proc says state T."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] in "Tt"


def start_worker(broker: BrokerProcess, name: str, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.pizza_worker", "--url", broker.url, "--name", name,
         "--log", str(tmp / f"{name}.log"), "--stop-file", str(tmp / "stop"),
         "--heartbeat-s", str(HEARTBEAT_S)],
        # this checkout's code first, and the caller's path after it (the SDK of this checkout)
        cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_dead_workers_orders_move_and_nothing_is_made_twice(tmp_path: Path, how: str) -> None:
    broker = BrokerProcess(tmp_path / "mq.db", "--grace-s", str(GRACE_S), "--lease-s", "60"
                           ).start()
    names = ["w1", "w2", "w3"]
    workers = {n: start_worker(broker, n, tmp_path) for n in names}
    try:
        wait_until(lambda: all(read_log(tmp_path / f"{n}.log").joined for n in names),
                   "every worker joined", timeout_s=20)
        with Client.connect(broker.url) as producer:
            orders = {producer.publish("orders", f"order {i}".encode(), key=f"store-{i % STORES}")
                      for i in range(ORDERS)}
        victim = "w2"
        # wait until the victim is in the middle of its work: an ack in flight (the ambiguous
        # case) while it holds more orders it has not finished
        def busy() -> bool:
            log = read_log(tmp_path / f"{victim}.log")
            held = {m for _, m, _, _ in log.leases} - set(log.acks)
            return len(log.starts) >= 10 and log.last == "ACKING" and len(held) >= 2

        wait_until(busy, f"{victim} started 10 orders and is acking one of several it holds",
                   timeout_s=20, interval_s=0.002)
        workers[victim].send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGSTOP)
        killed_at = time.time()
        if how == "SIGKILL":
            workers[victim].wait(5)
        else:
            wait_until(lambda: stopped(workers[victim]), f"{victim} is stopped")
        victim_log = read_log(tmp_path / f"{victim}.log")  # frozen from now on
        unconfirmed = victim_log.unconfirmed_acks()
        committed = acked_at_the_broker(broker.url, unconfirmed)
        victim_acks = set(victim_log.acks) | committed
        unfinished = {m for _, m, _, _ in victim_log.leases} - victim_acks

        survivors = [n for n in names if n != victim]

        def missing() -> set[int]:
            acked = set(victim_acks)
            for n in survivors:
                acked |= set(read_log(tmp_path / f"{n}.log").acks)
            return orders - acked

        wait_until(lambda: not missing(), lambda: f"every order was acked; {len(missing())} "
                   f"never were, e.g. {sorted(missing())[:5]}", timeout_s=60)
        (tmp_path / "stop").touch()
        for n in survivors:
            assert workers[n].wait(10) == 0, f"survivor {n} failed"

        logs = {n: read_log(tmp_path / f"{n}.log") for n in survivors}
        # acked exactly once, by a survivor or by the victim before it died
        ack_count: dict[int, int] = defaultdict(int)
        for acks in [*(log.acks for log in logs.values()), victim_acks]:
            for msg_id in acks:
                ack_count[msg_id] += 1
        assert set(ack_count) == orders and set(ack_count.values()) == {1}

        # the broker took back every order the victim held and had not finished (and any its
        # GET in flight leased), within the deadline; all of them went to survivors (who take
        # them when they next ask: on a busy machine, later)
        redelivered_at = {msg_id: t for log in logs.values() for t, msg_id, d, _ in log.leases
                          if d >= 2}
        released = releases(broker.url, unfinished | set(redelivered_at))
        assert released, "the broker took back no order: the victim held none when stopped"
        assert unfinished <= set(released)
        assert set(redelivered_at) == set(released)
        release_s = max(released.values()) - killed_at
        deadline = GRACE_S if how == "SIGKILL" else 3 * HEARTBEAT_S
        assert release_s < deadline + 1.0

        # who received each order: a survivor's order never went to another worker
        started_by: dict[int, set[str]] = defaultdict(set)
        for n, log in [*logs.items(), (victim, victim_log)]:
            for _, msg_id, _, _ in log.leases:
                started_by[msg_id].add(n)
        for msg_id, who in started_by.items():
            assert len(who - {victim}) <= 1, f"order {msg_id} was started by {who}"
            if len(who) > 1:
                assert msg_id in released

        pickup_s = min(redelivered_at.values()) - killed_at
        print(f"\n{how}: {len(released)} orders taken back from {victim}; {len(unconfirmed)} "
              f"acks unconfirmed, {len(committed)} of them committed; released "
              f"{release_s * 1000:.0f} ms after the signal (deadline {deadline * 1000:.0f} ms), "
              f"first one taken by a survivor after {pickup_s * 1000:.0f} ms")
        wait_until(lambda: broker.logged(f"consumer {victim}/", "requeued"),
                   f"the broker logged that {victim}'s leases were requeued")
    finally:
        (tmp_path / "stop").touch()
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()  # a stopped process too
                proc.wait(5)
        broker.kill()
