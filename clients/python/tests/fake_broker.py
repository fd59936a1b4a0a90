"""An in-process stand-in for the broker, for SDK tests that need a peer but not the real server.

It speaks binary frames over loopback (with the SDK's own codec, the protocol being the
contract), records every request with its arrival time, and plays sessions simply: a known
token resumes unless `resume` is off. Tests steer it with flags and the `on_request` hook, cut
connections with `drop()`, and stop and restart it on the same port. `ThreadedFakeBroker` runs
one on a loop of its own, for the blocking client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mq_client.codec import FrameDecoder, encode_frame


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the broker received it: when (monotonic seconds), on which connection."""

    at_s: float
    conn: int
    request: dict[str, Any]

    @property
    def op(self) -> str:
        return str(self.request["op"])


Hook = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any] | None]]
"""Called with (connection number, request) first; a map it returns is sent as the reply."""


class FakeBroker:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.resume = True
        self.ready: list[dict[str, Any]] = []  # messages `get` hands out, as wire maps
        self.lost: set[str] = set()  # receipts a batch `ack` reports as LEASE_LOST
        self.get_delay_s = 0.0  # how long an empty `get` waits, at most its wait_s
        self.on_request: Hook | None = None
        self.read_chunk_bytes = 65536
        self.read_pause_s = 0.0  # sleep after each read: a slow reader
        self.port = 0
        self.bad_frames = 0
        self._tokens: dict[str, str] = {}
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._by_number: dict[int, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"mq://127.0.0.1:{self.port}"

    def ops(self, conn: int | None = None) -> list[str]:
        return [s.op for s in self.seen if conn is None or s.conn == conn]

    async def start(self) -> FakeBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def push(self, conn: int, frame: dict[str, Any]) -> None:
        """Send a frame nobody asked for (a push) on connection `conn`."""
        self._by_number[conn].write(encode_frame(frame))

    def drop(self) -> None:
        """Reset every open connection, as a network failure would."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        """Stop listening and drop every connection; `start()` again listens on the same port."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self._numbers)
        self._writers.add(writer)
        self._by_number[conn] = writer
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(self.read_chunk_bytes):
                for request in decoder.feed(data):
                    self.seen.append(Seen(time.monotonic(), conn, request))
                    await self._answer(conn, request, writer)
                if self.read_pause_s:
                    await asyncio.sleep(self.read_pause_s)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            self.bad_frames += 1
        finally:
            self._writers.discard(writer)
            self._by_number.pop(conn, None)
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, conn: int, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        rid = request.get("rid")
        if self.on_request is not None:
            custom = await self.on_request(conn, request)
            if custom is not None:
                writer.write(encode_frame({"rid": rid, **custom}))
                return
        op = request["op"]
        if op == "get" and not self.ready:
            # Answered later, like a long-poll: the connection goes on meanwhile.
            delay_s = min(self.get_delay_s, float(request.get("wait_s") or 0.0))
            self._later(delay_s, writer, {"rid": rid, "ok": True, "msgs": []})
            return
        writer.write(encode_frame({"rid": rid, "ok": True, **self._result(request)}))
        if op == "quit":
            writer.close()

    def _later(self, delay_s: float, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        async def send() -> None:
            await asyncio.sleep(delay_s)
            if not writer.is_closing():
                writer.write(encode_frame(reply))

        task = asyncio.create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _result(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "hello":
            return self._hello(request)
        if op == "join":
            return {"queue": request["queue"], "group": request["group"], "consumer": "c",
                    "prefetch": request.get("prefetch") or 100, "members": 1}
        results: dict[str, Callable[[], dict[str, Any]]] = {
            "get": lambda: {"msgs": self._take(int(request.get("max") or 1))},
            "ack": lambda: self._ack(request),
            "pub": lambda: {"msg_id": len(self.seen)},
            "mpub": lambda: {"msg_ids": list(range(len(request["bodies"])))},
            "stats": lambda: {"server": {}, "queues": {}},
        }
        return results[op]() if op in results else {}

    def _take(self, n: int) -> list[dict[str, Any]]:
        msgs, self.ready = self.ready[:n], self.ready[n:]
        return msgs

    def _ack(self, request: dict[str, Any]) -> dict[str, Any]:
        if "receipts" not in request:
            return {}
        failed = [{"receipt": r, "code": "LEASE_LOST", "message": f"lease {r} is no longer held"}
                  for r in request["receipts"] if r in self.lost]
        return {"acked": len(request["receipts"]) - len(failed), "failed": failed}

    def _hello(self, request: dict[str, Any]) -> dict[str, Any]:
        token = request.get("session")
        resumed = self.resume and token in self._tokens and self._tokens[token] == request["consumer"]
        if not resumed:
            token = f"t{len(self._tokens) + 1}"
            self._tokens[token] = request["consumer"]
        heartbeat_s = float(request.get("heartbeat_s") or 1.0)
        return {"session": token, "heartbeat_s": heartbeat_s, "dead_after_s": 3 * heartbeat_s,
                "grace_s": 3.0, "resumed": resumed}


def message(msg_id: int, queue: str = "jobs", priority: int | None = None) -> dict[str, Any]:
    """A message map as a `get` reply or a push carries it (`priority` left out if None)."""
    m = {"receipt": f"{msg_id}.1", "msg_id": msg_id, "queue": queue, "deliveries": 1,
         "body": str(msg_id).encode(), "key": None, "published_at": 0.0}
    return m if priority is None else {**m, "priority": priority}


def max_gap_s(seen: list[Seen], start_s: float, end_s: float) -> float:
    """The longest time in [start_s, end_s] during which the broker received nothing."""
    times = [start_s, *(s.at_s for s in seen if start_s <= s.at_s <= end_s), end_s]
    return max(b - a for a, b in itertools.pairwise(times))


class ThreadedFakeBroker:
    """A `FakeBroker` on an event loop in a thread of its own, for the blocking client."""

    def __init__(self) -> None:
        self.broker = FakeBroker()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def run(self, coro: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(10)

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeBroker]:
        self._thread.start()
        try:
            self.run(self.broker.start())
            yield self.broker
        finally:
            self.run(self.broker.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
