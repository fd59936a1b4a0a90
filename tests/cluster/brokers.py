"""Brokers of one mq cluster in child processes, and the `mq cluster` admin commands.

`ClusterBroker` runs `mq serve --cluster NAME --node ID --etcd E1,E2,E3 --db postgresql://...
--host HOST --port 0` (optionally behind a command prefix such as `ip netns exec NS`, which
execs, so the PID is still the broker's). It is ready once its log says `listening on
HOST:PORT`, as `tests/harness.py` reads it, and a member once the log says `cluster NAME node
ID joined`. Every signal goes to its PID: kill -9, SIGSTOP and SIGCONT; `restart()` starts it
again on the port it had, so the seed lists clients were given stay right.

`Cluster` is a set of them with the admin commands: `status()` parses `mq cluster status
--json`, `drain(node)` runs `mq cluster drain`.

What `status()` reads of `mq cluster status --json` (protocol.md 11, the `cluster` reply):
    {"cluster": "t", "map_epoch": 1234, "controller": "b1", "slots": [[first, last, node,
     addr], ...], "brokers": {"b1": {"addr": "127.0.0.1:40123", "leaving": false,
     "slots": 341}, ...}}
A broker's `slots` counts the slots it owns in the map; a draining broker is still listed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from mq.cluster.assign import target
from tests.harness import wait_until

START_WITHIN_S = 30.0  # 2 shared cores, with etcd, Postgres and the other brokers busy
JOIN_WITHIN_S = 30.0
ADMIN_TIMEOUT_S = 30.0
MOVES_WITHIN_S = 60.0
STEADY_POLLS = 3
KEEP_HISTORY_S = 3600  # the checker reads every message's history after the run


@cache
def why_no_cluster_broker() -> str | None:
    """Why this checkout's broker cannot serve a cluster, or None if it can."""
    done = subprocess.run([sys.executable, "-m", "mq", "serve", "--help"],
                          capture_output=True, text=True, timeout=60)
    if "--cluster" not in done.stdout:
        return ("this broker has no `mq serve --cluster` yet (issue 15's broker side is not "
                "merged): the cluster scenarios need it")
    return None


def owners_in(status: dict[str, Any]) -> dict[int, str]:
    """slot -> owner, from the slot ranges of `mq cluster status --json`."""
    return {slot: node for first, last, node, _ in status["slots"]
            for slot in range(first, last + 1)}


class ClusterBroker:
    def __init__(self, cluster: str, node: str, etcd: str, db: str, host: str = "127.0.0.1",
                 prefix: Sequence[str] = (), args: Sequence[str] = ()) -> None:
        self.cluster, self.node, self.etcd, self.db, self.host = cluster, node, etcd, db, host
        self.prefix, self.args = tuple(prefix), tuple(args)
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log: list[str] = []
        self._listening = re.compile(rf"listening on {re.escape(host)}:(\d+)")
        self._joined = f"cluster {cluster} node {node} joined"

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = START_WITHIN_S) -> ClusterBroker:
        """Start it and wait until it listens; on the port it had before, if it had one."""
        cmd = self.command()
        self.log.append(f"=== start: {' '.join(cmd)}\n")
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        found = threading.Event()
        threading.Thread(target=self._read_log, args=(self.proc, found), daemon=True).start()
        if not found.wait(timeout_s) or not self.running() or self.port == 0:
            self.kill()
            raise RuntimeError(f"broker {self.node} did not start:\n{self.tail()}")
        return self

    def command(self) -> list[str]:
        return [*self.prefix, sys.executable, "-m", "mq", "serve", "--cluster", self.cluster,
                "--node", self.node, "--etcd", self.etcd, "--db", self.db, "--host", self.host,
                "--port", str(self.port), "--keep-history-s", str(KEEP_HISTORY_S), *self.args]

    def _read_log(self, proc: subprocess.Popen[str], found: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            match = self._listening.search(line)
            if match:
                self.port = int(match.group(1))
                found.set()
        found.set()

    def joined(self) -> bool:
        """Whether the current run of the broker logged that it joined its cluster."""
        since = max(i for i, line in enumerate(self.log) if line.startswith("=== start"))
        return any(self._joined in line for line in self.log[since:])

    def wait_joined(self, timeout_s: float = JOIN_WITHIN_S) -> None:
        wait_until(lambda: self.joined() or not self.running(),
                   lambda: f"broker {self.node} logged `{self._joined}`:\n{self.tail()}",
                   timeout_s=timeout_s, interval_s=0.05)
        assert self.running(), f"broker {self.node} exited:\n{self.tail()}"

    def kill(self) -> None:
        """kill -9, by PID: no chance to leave the cluster or flush anything."""
        if self.running():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, nothing of it runs."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Start it again after a kill, on the same port, and wait until it joined."""
        assert not self.running(), f"broker {self.node} is still running"
        self.start()
        self.wait_joined()

    def tail(self, lines: int = 60) -> str:
        return "".join(self.log[-lines:])


class Cluster:
    """Brokers b1..bN of one cluster over one etcd and one database."""

    def __init__(self, name: str, etcd: str, db: str) -> None:
        self.name, self.etcd, self.db = name, etcd, db
        self.brokers: dict[str, ClusterBroker] = {}

    def add(self, node: str, host: str = "127.0.0.1", prefix: Sequence[str] = (),
            etcd: str | None = None, db: str | None = None,
            args: Sequence[str] = ()) -> ClusterBroker:
        """Start broker `node` (on other engine addresses if given) and wait until it joined."""
        broker = ClusterBroker(self.name, node, etcd or self.etcd, db or self.db, host, prefix,
                               args)
        self.brokers[node] = broker
        broker.start()
        broker.wait_joined()
        return broker

    @property
    def seeds(self) -> str:
        """The seed-list URL of every broker: mq://h1:p1,h2:p2,..."""
        return "mq://" + ",".join(b.addr for b in self.brokers.values())

    def admin(self, *args: str) -> str:
        """`mq cluster ARGS --etcd ... --cluster NAME`; its stdout. Fails on a non-zero exit."""
        cmd = [sys.executable, "-m", "mq", "cluster", *args, "--etcd", self.etcd,
               "--cluster", self.name]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=ADMIN_TIMEOUT_S)
        assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}"
        return done.stdout

    def status(self) -> dict[str, Any]:
        status = json.loads(self.admin("status", "--json"))
        assert isinstance(status, dict), status
        return status

    def slots_owned(self) -> dict[str, int]:
        """How many slots each node owns in the map now."""
        return {node: int(info["slots"]) for node, info in self.status()["brokers"].items()}

    def controller(self) -> str:
        return str(self.status()["controller"])

    def drain(self, node: str) -> None:
        self.admin("drain", node)

    def wait_all_slots_owned(self, timeout_s: float = JOIN_WITHIN_S) -> dict[str, int]:
        """Wait until the map gives all 1,024 slots to running brokers; slots per node."""
        def settled() -> dict[str, int] | None:
            owned = self.slots_owned()
            live = {n for n, b in self.brokers.items() if b.running()}
            ok = sum(owned.values()) == 1024 and all(n in live for n, c in owned.items() if c)
            return owned if ok else None
        return wait_until(settled, lambda: f"every slot was owned: {self.status()}",
                          timeout_s=timeout_s, interval_s=0.25)

    def owners(self) -> dict[int, str]:
        """slot -> its owner in the map now."""
        return owners_in(self.status())

    def wait_balanced(self, timeout_s: float = MOVES_WITHIN_S) -> dict[int, str]:
        """Wait until every slot is where the ring puts it among the running brokers that are
        not leaving (mq/cluster/assign.py): the controller has no move left to make, joins'
        rebalancing (32 slots at a time, once membership settled) included. The owners then."""
        def balanced() -> dict[int, str] | None:
            status = self.status()
            live = [n for n, b in self.brokers.items() if b.running()
                    and not status["brokers"].get(n, {}).get("leaving", False)]
            owners = owners_in(status)
            return owners if owners == target(live) else None
        return wait_until(balanced, lambda: f"the map was balanced: {self.slots_owned()}",
                          timeout_s=timeout_s, interval_s=0.5)

    def wait_moves_done(self, done: Callable[[dict[str, int]], bool],
                        timeout_s: float = MOVES_WITHIN_S) -> dict[str, int]:
        """Wait until every slot is owned by a running broker, `done(slots per node)` holds, and
        the counts stayed the same over `STEADY_POLLS` polls (the controller moves slots a few
        dozen at a time); the slots per node then."""
        seen: list[dict[str, int]] = []

        def steady() -> dict[str, int] | None:
            owned = self.wait_all_slots_owned()
            seen.append(owned)
            last = seen[-STEADY_POLLS:]
            return owned if len(last) == STEADY_POLLS and done(owned) and all(
                x == owned for x in last) else None
        return wait_until(steady, lambda: f"the slot moves were done: {seen[-1:]}",
                          timeout_s=timeout_s, interval_s=0.5)

    def stop(self) -> None:
        """kill -9 of every broker by its PID (SIGKILL ends a paused one too)."""
        for broker in self.brokers.values():
            broker.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{b.tail(40)}" for n, b in self.brokers.items())

