"""A throwaway 3-node etcd cluster for the cluster tests, on 127.0.0.1, 127.0.0.2 and 127.0.0.3.

Each member listens for clients and peers on free ports of its own address (the whole of
127.0.0.0/8 is loopback on Linux, so the three addresses need no setup), keeps its data in a
fresh directory under the cluster's temp root, and is started and stopped by its PID. Health
and leadership are read over etcd's HTTP gateway (`/health`, `/v3/maintenance/status`), and
writes go through `/v3/kv/put`, so nothing here needs a gRPC client.

`kill(name)` is a kill -9 of one member; `restart(name)` starts it again on its data with
`--initial-cluster-state existing`, as an operator brings a crashed member back. A member may
also listen on extra addresses (`extra_hosts`), which the partition scenario uses: a broker
inside its own network namespace reaches etcd over a bridge, not over loopback.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import wait_until

ETCD = os.environ.get("MQ_TEST_ETCD", "etcd")
HOW_TO_GET = "apt-get install etcd-server etcd-client (`make test-cluster` does it as root)"
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
READY_WITHIN_S = 20.0
HTTP_TIMEOUT_S = 2.0


def why_no_etcd() -> str | None:
    """Why an etcd cluster cannot run here, or None if it can."""
    if shutil.which(ETCD) is None:
        return f"no etcd binary on PATH: {HOW_TO_GET}"
    return None


def free_port_on(host: str) -> int:
    """A TCP port of `host` that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Member:
    """Where one etcd member lives: its name, address, ports and extra listening addresses."""

    name: str
    host: str
    client_port: int
    peer_port: int
    extra_hosts: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """host:port of its client URL, as `mq serve --etcd` takes it."""
        return f"{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    def client_urls(self) -> str:
        hosts = (self.host, *self.extra_hosts)
        return ",".join(f"http://{h}:{self.client_port}" for h in hosts)


class EtcdCluster:
    """Three etcd members; `start()` waits until all are healthy and one leads."""

    def __init__(self, root: Path | None = None, extra_hosts: tuple[str, ...] = ()) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="mq-etcd-"))
        self.members = [
            Member(f"e{i}", host, free_port_on(host), free_port_on(host),
                   (extra_hosts[i - 1],) if extra_hosts else ())
            for i, host in enumerate(HOSTS, start=1)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token = f"mq-test-{os.getpid()}-{int(time.time() * 1000)}"

    @property
    def endpoints(self) -> str:
        """The `--etcd` value of a broker: every member's host:port, comma-separated."""
        return ",".join(m.endpoint for m in self.members)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def start(self) -> EtcdCluster:
        for m in self.members:
            self._spawn(m, "new")
        self.wait_healthy()
        return self

    def _spawn(self, m: Member, state: str) -> None:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        log = open(self.root / f"{m.name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.procs[m.name] = subprocess.Popen(
            [ETCD, "--name", m.name, "--data-dir", str(self.root / f"{m.name}.data"),
             "--listen-client-urls", m.client_urls(), "--advertise-client-urls", m.client_urls(),
             "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
             "--initial-cluster", initial, "--initial-cluster-state", state,
             "--initial-cluster-token", self.token,
             # Fast elections keep a leader kill short; 2 cores shared by many processes still
             # keep 100 ms heartbeats (the design note measured 2.1 s to the next write).
             "--heartbeat-interval", "100", "--election-timeout", "1000",
             "--logger", "zap", "--log-outputs", "stderr"],
            stdout=log, stderr=log)
        log.close()

    def wait_healthy(self, timeout_s: float = READY_WITHIN_S) -> None:
        """Wait until every running member says it is healthy and they agree on a leader."""
        wait_until(lambda: all(self.healthy(m.name) for m in self.running())
                   and self.leader() is not None,
                   lambda: "etcd was healthy with a leader; logs:\n" + self.logs(),
                   timeout_s=timeout_s, interval_s=0.1)

    def running(self) -> list[Member]:
        return [m for m in self.members
                if m.name in self.procs and self.procs[m.name].poll() is None]

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def healthy(self, name: str) -> bool:
        """Whether member `name` answers /health with health true (it has a leader and quorum)."""
        try:
            return _http_json(self.member(name), "/health", None).get("health") == "true"
        except (OSError, ValueError):
            return False

    def status(self, name: str) -> dict[str, str]:
        """`/v3/maintenance/status` of one member: its member_id, the leader it knows, ..."""
        reply = _http_json(self.member(name), "/v3/maintenance/status", {})
        return {"member_id": reply["header"]["member_id"], "leader": reply["leader"],
                "raft_term": reply["header"]["raft_term"]}

    def leader(self) -> str | None:
        """The name of the member that the running members agree leads, or None."""
        ids: dict[str, str] = {}
        leaders: set[str] = set()
        for m in self.running():
            try:
                st = self.status(m.name)
            except (OSError, ValueError, KeyError):
                return None
            ids[st["member_id"]] = m.name
            leaders.add(st["leader"])
        if len(leaders) != 1:
            return None
        return ids.get(leaders.pop())

    def put(self, key: str, value: str, via: str | None = None) -> int:
        """Write key=value through one member (any running one); the revision it made."""
        targets = [self.member(via)] if via else self.running()
        last: Exception | None = None
        for m in targets:
            try:
                reply = _http_json(m, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
                return int(reply["header"]["revision"])
            except (OSError, ValueError, KeyError) as e:
                last = e
        raise OSError(f"no etcd member took the write: {last}")

    def get(self, key: str, via: str) -> str | None:
        """key's value as member `via` serves it (a linearizable read), or None."""
        reply = _http_json(self.member(via), "/v3/kv/range", {"key": _b64(key)})
        kvs = reply.get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def kill(self, name: str) -> None:
        """kill -9 of member `name`, by its PID."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def kill_leader(self) -> str:
        """kill -9 of the member that leads now; its name."""
        name = wait_until(self.leader, "etcd had a leader to kill", timeout_s=READY_WITHIN_S)
        self.kill(name)
        return name

    def restart(self, name: str) -> None:
        """Start a killed member again on its data, as a member of the existing cluster."""
        assert self.procs[name].poll() is not None, f"{name} is still running"
        self._spawn(self.member(name), "existing")
        self.wait_healthy()

    def stop(self) -> None:
        """kill -9 of every member by its PID, and the data removed."""
        for name in list(self.procs):
            self.kill(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def logs(self) -> str:
        out = []
        for m in self.members:
            path = self.root / f"{m.name}.log"
            if path.exists():
                out.append(f"--- {m.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(out)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _http_json(m: Member, path: str, body: dict[str, str] | None) -> dict[str, Any]:
    """GET (body None) or POST a JSON body to one member's HTTP gateway; the decoded reply."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{m.endpoint}{path}", data=data,
                                 method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as reply:
            decoded = json.loads(reply.read())
    except urllib.error.HTTPError as e:
        raise OSError(f"{m.name} {path}: HTTP {e.code}") from e
    if not isinstance(decoded, dict):
        raise ValueError(f"{m.name} {path}: not a JSON object")
    return decoded
