"""Each broker's share of a run with `--queues` (or a cluster's seed list, or several pids).

Before the run the harness reads the slot map (`cluster`; a single broker answers that it is in
none) and picks the queues (placement.py), so it knows which broker serves each queue. Before
and after the measured window it asks every broker, on a connection of its own, for `stats`:
its node, its commit counters and its queues' `published` and `acked` counters. A broker's
messages are the larger of the two deltas over its queues (what it stored, or what it
delivered and saw acked); with its pid, its CPU seconds over the window divided by them is the
broker CPU per message, the figure that tells what each broker costs when one box cannot show
scaling. A pid is matched to its broker by the TCP port the process listens on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psutil
from mq_client import AsyncClient
from mq_client.errors import MQError
from mq_client.slots import slot_of
from mq_client.url import Address, parse_seeds

from mq.bench.placement import spread_names

CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Placement:
    """The run's queues, the address of each one's broker (same order), and every broker
    (address -> node; None for a broker outside a cluster)."""

    queues: tuple[str, ...]
    owners: tuple[str, ...]
    nodes: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Counters:
    """What one broker's `stats` said at one moment; None where it could not tell."""

    node: str | None
    commits: int | None
    committed_changes: int | None
    published: int
    acked: int


def broker_url(url: str, addr: str) -> str:
    """The URL of the one broker at `addr` (host:port), with the scheme and credentials of `url`."""
    seed = parse_seeds(url)[0]
    userinfo = (f"{quote(seed.user, safe='')}:{quote(seed.secret or '', safe='')}@" if seed.user
                else "")
    host, _, port = addr.rpartition(":")
    shown = f"[{host}]" if ":" in host else host
    return f"{'mqs' if seed.tls else 'mq'}://{userinfo}{shown}:{port}"


def _addr(address: Address) -> str:
    return f"{address.host}:{address.port}"


async def place(url: str, base: str, n: int) -> Placement:
    """Read the map from the broker(s) at `url` and pick `n` queues spread over its brokers."""
    async with asyncio.timeout(CALL_TIMEOUT_S), AsyncClient.connect(url) as client:
        described = await client.cluster()
    if described.get("cluster") is None:  # one broker serves every queue
        addr = _addr(parse_seeds(url)[0])
        queues = [base] if n == 1 else spread_names(base, n, None)
        return Placement(tuple(queues), (addr,) * n, {addr: None})
    owner: dict[int, str] = {}
    nodes: dict[str, str | None] = {}
    for first, last, node, addr in described["slots"]:
        owner.update(dict.fromkeys(range(int(first), int(last) + 1), str(addr)))
        nodes[str(addr)] = str(node)
    queues = [base] if n == 1 else spread_names(base, n, owner)
    return Placement(tuple(queues), tuple(owner[slot_of(q)] for q in queues),
                     dict(sorted(nodes.items())))


async def read_counters(url: str, placement: Placement) -> dict[str, Counters]:
    """Every broker's counters now, each asked on a connection of its own."""
    addrs = list(placement.nodes)
    found = await asyncio.gather(*(_counters(url, addr, placement) for addr in addrs))
    return dict(zip(addrs, found, strict=True))


async def _counters(url: str, addr: str, placement: Placement) -> Counters:
    mine = {q for q, owner in zip(placement.queues, placement.owners, strict=True) if owner == addr}
    try:
        async with (asyncio.timeout(CALL_TIMEOUT_S),
                    AsyncClient.connect(broker_url(url, addr)) as client):
            stats = await client.stats()
    except (MQError, TimeoutError):
        return Counters(placement.nodes[addr], None, None, 0, 0)
    server, queues = stats["server"], stats["queues"]
    ours = [queues[q] for q in mine if q in queues]
    return Counters(server.get("node", placement.nodes[addr]), server.get("commits"),
                    server.get("committed_changes"), sum(int(q.get("published", 0)) for q in ours),
                    sum(int(q.get("acked", 0)) for q in ours))


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (empty if it cannot be read)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def pid_of(addr: str, pids: dict[int, set[int]]) -> int | None:
    """Which of `pids` (pid -> its listening ports) listens on the port of `addr`."""
    port = int(addr.rpartition(":")[2])
    return next((pid for pid, ports in pids.items() if port in ports), None)


def rows(placement: Placement, before: dict[str, Counters], after: dict[str, Counters],
         cpu_s: dict[str, float | None], pids: dict[str, int | None]) -> list[dict[str, Any]]:
    """One row per broker: its queues, messages, commits, and CPU per message (µs) with a pid."""
    out = []
    for addr in placement.nodes:
        b, a = before[addr], after[addr]
        published, acked = a.published - b.published, a.acked - b.acked
        messages = max(published, acked)
        commits = _delta(b.commits, a.commits)
        changes = _delta(b.committed_changes, a.committed_changes)
        cpu = cpu_s.get(addr)
        out.append({
            "addr": addr, "node": a.node or b.node, "pid": pids.get(addr),
            "queues": sum(1 for owner in placement.owners if owner == addr),
            "published": published, "acked": acked, "messages": messages,
            "commits": commits, "committed_changes": changes,
            "cpu_s": cpu,
            "cpu_us_per_msg": cpu * 1e6 / messages if cpu is not None and messages else None,
        })
    return out


def _delta(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None
