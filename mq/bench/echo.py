"""The network floor: a bare uvloop echo of length-prefixed msgpack frames over 127.0.0.1.

The server runs in a spawned process (as the broker does) and answers each request frame, a
`pub`-shaped map with a 100-byte body, with a `pub`-shaped reply: it decodes and encodes every
frame with msgpack, as a Python broker must, and does nothing else. The client keeps `window`
frames in flight: a large window gives frames/s pipelined, a window of 1 gives round trips/s.
What the broker reaches over these figures is what its queue logic and storage cost.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

import msgpack

from mq.bench.workers import run_async

PREFIX_BYTES = 4
SERVER_LIFETIME_S = 600.0  # the server exits by itself at the latest after this
BODY = bytes(100)


def _frame(payload: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(payload, use_bin_type=True)
    return len(data).to_bytes(PREFIX_BYTES, "big") + data


def _split(buffer: bytearray) -> list[dict[str, Any]]:
    """Decode and remove every complete frame at the start of `buffer`."""
    frames: list[dict[str, Any]] = []
    pos = 0
    while len(buffer) - pos >= PREFIX_BYTES:
        end = pos + PREFIX_BYTES + int.from_bytes(buffer[pos:pos + PREFIX_BYTES], "big")
        if len(buffer) < end:
            break
        frames.append(msgpack.unpackb(buffer[pos + PREFIX_BYTES:end], raw=False))
        pos = end
    del buffer[:pos]
    return frames


class _EchoServer(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        replies = [_frame({"rid": f["rid"], "ok": True, "msg_id": f["rid"]})
                   for f in _split(self._buffer)]
        if replies and self._transport is not None:
            self._transport.write(b"".join(replies))


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoServer, "127.0.0.1", 0)
    conn.send(server.sockets[0].getsockname()[1])
    await asyncio.sleep(SERVER_LIFETIME_S)
    server.close()


def echo_server_main(conn: Connection) -> None:
    """Entry point of the echo server process: sends its port on `conn`, then serves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_async(_serve(conn))


class _EchoClient(asyncio.Protocol):
    def __init__(self, window: int) -> None:
        self._window = window
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._next_rid = 0
        self.replies = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._send(self._window)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        n = len(_split(self._buffer))
        self.replies += n
        self._send(n)  # one new request per reply keeps `window` in flight

    def _send(self, n: int) -> None:
        if self._transport is None or self._transport.is_closing() or n == 0:
            return
        frames = []
        for _ in range(n):
            self._next_rid += 1
            frames.append(_frame({"op": "pub", "rid": self._next_rid, "queue": "floor",
                                  "body": BODY}))
        self._transport.write(b"".join(frames))


async def _measure(port: int, window: int, duration_s: float) -> float:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(lambda: _EchoClient(window),
                                                     "127.0.0.1", port)
    try:
        started = time.perf_counter()
        await asyncio.sleep(duration_s)
        return client.replies / (time.perf_counter() - started)
    finally:
        transport.close()


def echo_rates(duration_s: float, windows: tuple[int, ...]) -> list[float]:
    """Echoed frames per second for each window (frames in flight), `duration_s` seconds each."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    server = ctx.Process(target=echo_server_main, args=(theirs,), name="mq-bench-echo",
                         daemon=True)
    server.start()
    try:
        if not ours.poll(30.0):
            raise RuntimeError("the echo server did not start")
        port = int(ours.recv())
        return [run_async(_measure(port, window, duration_s)) for window in windows]
    finally:
        server.terminate()
        server.join(5.0)
