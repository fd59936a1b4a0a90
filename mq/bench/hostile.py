"""`mq bench hostile`: clients that try to stall or bloat the broker, and what it costs the others.

Each scenario starts a broker of its own (on a temporary database), runs one kind of hostile
client against it for a bounded time while a well-behaved client PINGs it every few
milliseconds, then closes the hostile clients. It reports the PING latency during the attack
and the broker's RSS before, at its peak, and after the hostile clients left. Raw sockets on
127.0.0.1 only: a hostile client is exactly one that does not behave like the SDK.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import psutil
from mq_client.codec import encode_frame

from mq.bench.broker import BrokerMonitor, LocalBroker
from mq.bench.histogram import Histogram

MIB = 1024 * 1024
SENDERS: list[threading.Thread] = []  # threads still writing into a hostile socket
PING_EVERY_S = 0.005
SETTLE_S = 1.0  # after the hostile clients left, before the last RSS reading


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def small_receive_buffer(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def read_frame(sock: socket.socket) -> dict[str, Any]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the broker")
            data += chunk
        return data

    reply: dict[str, Any] = msgpack.unpackb(exact(struct.unpack(">I", exact(4))[0]), raw=False)
    return reply


# --- the hostile clients: each opens its sockets, returns them, and never reads -------------

def pipelining_producer(port: int, count: int) -> list[socket.socket]:
    """Pipelines `count` publishes without reading one reply."""
    sock = small_receive_buffer(connect(port))
    chunk = b"".join(encode_frame({"op": "pub", "queue": "hostile", "body": bytes(100), "rid": i})
                     for i in range(1000))
    sender = threading.Thread(target=_send_all, args=(sock, chunk, count // 1000), daemon=True)
    sender.start()
    SENDERS.append(sender)
    return [sock]


def _send_all(sock: socket.socket, chunk: bytes, times: int) -> None:
    try:
        for _ in range(times):
            sock.sendall(chunk)
    except OSError:
        pass  # closed at the end of the scenario


def lazy_subscriber(port: int, count: int) -> list[socket.socket]:
    """Subscribes with 0.2 s leases to `count` 10 KB messages and reads nothing."""
    producer = connect(port)
    for first in range(0, count, 500):  # 5 MB a frame: under the default max_frame_bytes
        producer.sendall(encode_frame({"op": "mpub", "queue": "hostile", "rid": first,
                                "bodies": [bytes(10_000)] * min(500, count - first)}))
        read_frame(producer)
    sock = small_receive_buffer(connect(port))
    sock.sendall(encode_frame({"op": "sub", "queue": "hostile", "prefetch": 1000, "lease_s": 0.2}))
    return [producer, sock]


def lazy_monitor(port: int, count: int) -> list[socket.socket]:
    """Monitors every queue and reads nothing while `count` messages are published."""
    sock = small_receive_buffer(connect(port))
    sock.sendall(encode_frame({"op": "monitor"}))
    producer = connect(port)
    for first in range(0, count, 1000):
        producer.sendall(encode_frame({"op": "mpub", "queue": "hostile", "rid": first,
                                "bodies": [bytes(100)] * min(1000, count - first)}))
        read_frame(producer)
    return [sock, producer]


def big_peeks(port: int, count: int) -> list[socket.socket]:
    """Publishes one 7.7 MB message, then pipelines `count` PEEKs of it and reads nothing."""
    sock = small_receive_buffer(connect(port))
    big = {"op": "pub", "queue": "hostile", "body": bytes(7_700_000), "rid": 0}
    sock.sendall(encode_frame(big))
    read_frame(sock)
    sock.sendall(b"".join(encode_frame({"op": "peek", "queue": "hostile", "rid": i})
                          for i in range(count)))
    return [sock]


def unfinished_frames(port: int, count: int) -> list[socket.socket]:
    """`count` connections each send all but the last byte of an 8 MiB frame."""
    socks = []
    for _ in range(count):
        sock = connect(port)
        with contextlib.suppress(OSError):  # refused by the broker: what the bound is for
            sock.sendall(struct.pack(">I", 8 * MIB - 4) + bytes(8 * MIB - 5))
        socks.append(sock)
    return socks


def vanishing_waiters(port: int, count: int) -> list[socket.socket]:
    """`count` connections each send a GET that waits on a queue of its own, then vanish with
    a reset (no FIN, so the broker learns only from the loss)."""
    for i in range(count):
        sock = connect(port)
        sock.sendall(encode_frame({"op": "get", "queue": f"nothing-{i}", "wait_s": 300, "rid": 1}))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return []


SCENARIOS: dict[str, tuple[Callable[[int, int], list[socket.socket]], int, str]] = {
    "pipeline": (pipelining_producer, 1_000_000, "a producer pipelines publishes, reads nothing"),
    "sub": (lazy_subscriber, 2_000, "a subscriber with 0.2 s leases reads nothing"),
    "monitor": (lazy_monitor, 200_000, "a MONITOR reads nothing while messages flow"),
    "peeks": (big_peeks, 100, "100 PEEKs of a 7.7 MB message, never read"),
    "frames": (unfinished_frames, 48, "48 connections each hold an unfinished 8 MiB frame"),
    "waiters": (vanishing_waiters, 1_000, "1,000 GETs that wait, their clients gone"),
}


def run_scenario(name: str, attack_s: float, sync: str = "normal") -> dict[str, Any]:
    """One scenario on a broker of its own; its figures (latencies in µs, sizes in MB)."""
    start_attack, count, what = SCENARIOS[name]
    with LocalBroker(sync) as broker:
        monitor = BrokerMonitor(broker.pid)
        monitor.start()
        try:
            rss_before = monitor.rss_bytes()
            pings = Histogram()
            stop = threading.Event()
            pinger = threading.Thread(target=_ping, args=(broker.port, pings, stop), daemon=True)
            pinger.start()
            socks = start_attack(broker.port, count)
            time.sleep(attack_s)
            stop.set()
            pinger.join(30)
            _close(socks)
            time.sleep(SETTLE_S)
            rss_after = monitor.rss_bytes()
            alive = psutil.pid_exists(broker.pid)
        finally:
            monitor.stop()
        summary = pings.summary_us()
        return {"scenario": name, "what": what, "pings": summary["count"],
                "ping_p50_us": summary["p50"], "ping_p99_us": summary["p99"],
                "ping_max_us": summary["max"], "rss_before_mb": rss_before / 1e6,
                "rss_peak_mb": monitor.rss_peak_bytes / 1e6, "rss_after_mb": rss_after / 1e6,
                "broker_alive": alive}


def _close(socks: list[socket.socket]) -> None:
    # Shut the sockets down before closing them: a sender thread blocked in sendall must fail
    # and end, not write into whatever socket reuses the file descriptor next.
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    while SENDERS:
        SENDERS.pop().join(30)
    for sock in socks:
        sock.close()


def _ping(port: int, pings: Histogram, stop: threading.Event) -> None:
    sock = connect(port)
    rid = 0
    while not stop.is_set():
        rid += 1
        started = time.perf_counter_ns()
        sock.sendall(encode_frame({"op": "ping", "rid": rid}))
        try:
            read_frame(sock)
        except TimeoutError:  # the broker is stalled: record the wait and stop asking
            pings.record(time.perf_counter_ns() - started)
            break
        pings.record(time.perf_counter_ns() - started)
        time.sleep(PING_EVERY_S)
    sock.close()


def render(rows: list[dict[str, Any]]) -> str:
    head = (f"{'scenario':10} {'pings':>6} {'p50 us':>9} {'p99 us':>9} {'max us':>10} "
            f"{'rss MB':>7} {'peak':>7} {'after':>7}  alive  what")
    lines = [head]
    for r in rows:
        lines.append(f"{r['scenario']:10} {r['pings']:>6,} {r['ping_p50_us']:>9,.0f} "
                     f"{r['ping_p99_us']:>9,.0f} {r['ping_max_us']:>10,.0f} "
                     f"{r['rss_before_mb']:>7.1f} {r['rss_peak_mb']:>7.1f} "
                     f"{r['rss_after_mb']:>7.1f}  {'yes' if r['broker_alive'] else 'NO ':5}"
                     f"  {r['what']}")
    return "\n".join(lines)
