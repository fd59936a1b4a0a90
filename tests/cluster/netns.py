"""A network of the test's own for partitions: a bridge in the root namespace that carries the
engines' addresses, and a network namespace for the broker to cut off.

Why not loopback: on lo every connection gets 127.0.0.1 as its source, even one to 127.0.0.3,
so no rule on lo can tell one broker's traffic from another's (design note section 2 measured a
port-based cut leaking). So the isolated broker runs in a namespace of its own, joined to the
root namespace by a veth on a bridge; the engines listen on the bridge's addresses as well as on
loopback; and a cut is a blackhole route inside the namespace: packets to that address are
dropped without a word, on connections already open too (a route change makes every socket
look its route up again), as a pulled cable would. Deleting the route heals it. No iptables.

The subnet is 10.77.N.0/24 with N from the test's PID, checked unused; the addresses exist
only on the test's bridge and inside its namespace, and go with them at `down()`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

IP_TIMEOUT_S = 10.0


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)


def why_no_netns() -> str | None:
    """Why this machine will not make network namespaces for us, or None if it will."""
    if os.geteuid() != 0:
        return "partitions need network namespaces, which need root (`ip netns add`)"
    probe = f"mqprobe{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"`ip netns add` is refused here: {made.stderr.strip() or made.returncode}"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True, slots=True)
class Addresses:
    """The test network's addresses: one per etcd member, one for Postgres, one for the broker."""

    subnet: int  # N of 10.77.N.0/24

    def host(self, last: int) -> str:
        return f"10.77.{self.subnet}.{last}"

    @property
    def etcd(self) -> tuple[str, str, str]:
        return (self.host(11), self.host(12), self.host(13))

    @property
    def postgres(self) -> str:
        return self.host(20)

    @property
    def broker(self) -> str:
        return self.host(2)

    @property
    def bridge(self) -> str:
        return self.host(254)


class Partitionable:
    """A bridge with the engines' addresses and one namespace whose routes the test can cut."""

    def __init__(self) -> None:
        tag = os.getpid() % 100_000
        self.addrs = Addresses(20 + os.getpid() % 200)
        self.bridge, self.ns, self.veth = f"mqbr{tag}", f"mqns{tag}", f"mqv{tag}"
        self.cut_hosts: set[str] = set()

    @property
    def prefix(self) -> list[str]:
        """What runs a command inside the namespace (`ip netns exec` execs: same PID)."""
        return ["ip", "netns", "exec", self.ns]

    def up(self) -> Partitionable:
        used = _ip("-o", "addr", "show", "to", f"10.77.{self.addrs.subnet}.0/24").stdout
        if used.strip():
            raise RuntimeError(f"10.77.{self.addrs.subnet}.0/24 is already in use here: {used}")
        a = self.addrs
        self._run(["link", "add", self.bridge, "type", "bridge"],
                  ["addr", "add", f"{a.bridge}/24", "dev", self.bridge],
                  *(["addr", "add", f"{h}/32", "dev", self.bridge]
                    for h in (*a.etcd, a.postgres)),
                  ["link", "set", self.bridge, "up"],
                  ["netns", "add", self.ns],
                  ["link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns",
                   self.ns],
                  ["link", "set", self.veth, "master", self.bridge, "up"],
                  ["-n", self.ns, "addr", "add", f"{a.broker}/24", "dev", "eth0"],
                  ["-n", self.ns, "link", "set", "eth0", "up"],
                  ["-n", self.ns, "link", "set", "lo", "up"])
        return self

    def cut(self, hosts: Sequence[str]) -> None:
        """Drop, inside the namespace, every packet to `hosts` (open connections included)."""
        self._run(*(["-n", self.ns, "route", "add", "blackhole", f"{h}/32"] for h in hosts))
        self.cut_hosts.update(hosts)

    def heal(self) -> None:
        self._run(*(["-n", self.ns, "route", "del", "blackhole", f"{h}/32"]
                    for h in sorted(self.cut_hosts)))
        self.cut_hosts.clear()

    def down(self) -> None:
        """Remove the namespace (its veth goes with it) and the bridge; quiet if already gone.
        Kill what runs inside first: a process keeps no namespace alive, but it loses its
        network."""
        _ip("netns", "del", self.ns)
        _ip("link", "del", self.bridge)

    def _run(self, *commands: Sequence[str]) -> None:
        for cmd in commands:
            done = _ip(*cmd)
            if done.returncode != 0:
                raise RuntimeError(f"ip {' '.join(cmd)}: {done.stderr.strip()}")
