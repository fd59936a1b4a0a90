"""A real broker in a child process, on a free port of 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class BrokerProcess:
    def __init__(self, db_path: Path, *args: str) -> None:
        self.db_path = db_path
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"mq://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> BrokerProcess:
        cmd = [sys.executable, "-m", "mq", "serve", "--port", "0", "--db", str(self.db_path),
               *self.args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        found = threading.Event()
        threading.Thread(target=self._read_log, args=(self.proc, found), daemon=True).start()
        if not found.wait(timeout_s):
            self.kill()
            raise RuntimeError("broker did not start:\n" + "".join(self.log))
        return self

    def _read_log(self, proc: subprocess.Popen[str], found: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(1))
                found.set()

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_until(condition: Callable[[], T | None], what: str | Callable[[], str], *,
               timeout_s: float = 10.0, interval_s: float = 0.02) -> T:
    """Poll `condition` every `interval_s` seconds until it returns something truthy, and return
    that; after `timeout_s` seconds fail the test, saying what did not happen (`what`, or what
    it returns when called: a description worked out only on failure)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"waited {timeout_s} s, in vain, until {said}")
        time.sleep(interval_s)
    return value
