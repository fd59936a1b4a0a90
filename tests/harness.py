"""What the server and end-to-end tests drive a real broker with: a broker in a child process,
raw text and binary sessions that speak exact bytes, an SDK scenario runner, free ports, and a
bounded wait for a condition.

Everything talks to 127.0.0.1. Nothing here waits for a fixed time: a test that needs
something to have happened waits until it has (`wait_until`), with a deadline and a message
that says what never happened.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import msgpack
from mq_client import AsyncClient, Message

T = TypeVar("T")
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_HTTP = re.compile(r"http side port on 127\.0\.0\.1:(\d+)")  # logged before _LISTENING


def wait_until(condition: Callable[[], T | None], what: str | Callable[[], str], *,
               timeout_s: float = 10.0, interval_s: float = 0.02) -> T:
    """Poll `condition` every `interval_s` seconds until it returns something truthy, and return
    that; after `timeout_s` seconds fail the test, saying what did not happen (`what`, or what
    it returns when called: a description worked out only on failure)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(timeout_s, what)
        time.sleep(interval_s)
    return value


async def wait_until_async(condition: Callable[[], Awaitable[T | None]],
                           what: str | Callable[[], str], *, timeout_s: float = 10.0,
                           interval_s: float = 0.02) -> T:
    """`wait_until` for a scenario on an event loop: `condition` is awaited (a broker query)."""
    deadline = time.monotonic() + timeout_s
    while not (value := await condition()):
        if time.monotonic() >= deadline:
            raise _timed_out(timeout_s, what)
        await asyncio.sleep(interval_s)
    return value


def _timed_out(timeout_s: float, what: str | Callable[[], str]) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"waited {timeout_s} s, in vain, until {said}")


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago (for a broker restarted on the same port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerProcess:
    """`python -m mq serve` on a database (an SQLite file, or a postgresql:// URL), in a child
    process; its stderr is kept in `log`.

    `start()` waits until it listens (on a free port unless `--port` is among `args`); as a
    context manager it starts on entry and is SIGKILLed on exit. It can be started again on
    the same file after `kill()` or `stop()`.
    """

    def __init__(self, db_path: Path | str, *args: str) -> None:
        self.db_path = db_path
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.http_port = 0  # with --http-port among `args`
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"mq://127.0.0.1:{self.port}"

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()

    def start(self, timeout_s: float = 15.0) -> BrokerProcess:
        port = [] if "--port" in self.args else ["--port", "0"]
        self.port = 0  # until this start's log says where it listens
        cmd = [sys.executable, "-m", "mq", "serve", *port, "--db", str(self.db_path), *self.args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        found = threading.Event()
        threading.Thread(target=self._read_log, args=(self.proc, found), daemon=True).start()
        # `found` is also set when the broker exits, maybe before poll() can tell: no port
        # read means it never listened.
        if not found.wait(timeout_s) or self.proc.poll() is not None or self.port == 0:
            self.kill()
            raise RuntimeError("broker did not start:\n" + "".join(self.log))
        return self

    def _read_log(self, proc: subprocess.Popen[str], found: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            http = _HTTP.search(line)
            if http:
                self.http_port = int(http.group(1))
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                found.set()
        found.set()  # it exited: start() need not wait out its timeout to say so

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code. Fails the test, showing
        the broker's log, if the broker has not exited after `timeout_s` seconds."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the broker did not exit within {timeout_s} s of SIGTERM; "
                                 "its log:\n" + "".join(self.log)) from None

    def rss_bytes(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def logged(self, *words: str) -> bool:
        """Whether one line of the broker's log holds all of `words`."""
        return any(all(w in line for w in words) for line in self.log)


class TextSession:
    """A raw socket that speaks text mode exactly as a telnet user types it (CRLF line ends)."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._buffer = b""

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def read_line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the broker; unread: {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", errors="surrogateescape")

    def reply(self) -> list[str]:
        """All lines of one reply: up to the line that starts with '+', '-ERR ' or 'MSG '."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(("+", "-ERR ", "MSG ")):
                return lines

    def ask(self, line: str | bytes) -> str:
        """Send one command and return the last line of its reply."""
        self.send(line)
        return self.reply()[-1]

    def close(self) -> None:
        self.sock.close()


def frame(payload: dict[str, Any]) -> bytes:
    """One binary-mode frame: a 4-byte big-endian length, then the msgpack map."""
    body: bytes = msgpack.packb(payload, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class BinarySession:
    """A raw socket that speaks binary mode frame by frame, with no SDK in between."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._rid = 0

    def send(self, payload: dict[str, Any]) -> None:
        self.sock.sendall(frame(payload))

    def read(self) -> dict[str, Any]:
        """The next frame from the broker, decoded."""
        (length,) = struct.unpack(">I", self._read_exact(4))
        reply: dict[str, Any] = msgpack.unpackb(self._read_exact(length), raw=False)
        return reply

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request under the next rid and return the next frame (its reply)."""
        self._rid += 1
        self.send({"op": op, "rid": self._rid, **fields})
        return self.read()

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError(f"closed by the broker after {len(data)} of {n} bytes")
            data += chunk
        return data


def run_with_client(url: str, scenario: Callable[[AsyncClient], Awaitable[None]],
                    timeout_s: float = 5.0) -> None:
    """Run `scenario` with an AsyncClient connected to `url`; it fails after `timeout_s` s."""
    async def main() -> None:
        async with AsyncClient.connect(url) as mq:
            await asyncio.wait_for(scenario(mq), timeout_s)

    asyncio.run(main())


def bodies(msgs: list[Message]) -> list[bytes]:
    return [m.body for m in msgs]
