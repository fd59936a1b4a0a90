"""The broker under test: one the harness starts on a temporary database, and its CPU and RSS."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import psutil

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
LOG_LINES_KEPT = 40
RSS_SAMPLE_INTERVAL_S = 0.2


class LocalBroker:
    """`python -m mq serve` on a free port of 127.0.0.1 and a database in a fresh temp dir.

    Use as a context manager: it starts on entry; on exit it stops the broker (SIGTERM, then
    SIGKILL after `STOP_TIMEOUT_S`) and removes the directory. `parent_dir` is where the temp
    dir goes (the system's temp dir by default); the fsync floor is measured there too.
    """

    def __init__(self, sync: str, parent_dir: str | None = None) -> None:
        self.sync = sync
        self.dir = Path(tempfile.mkdtemp(prefix="mq-bench-", dir=parent_dir))
        self.db_path = self.dir / "bench.db"
        self.port = 0
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"mq://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> LocalBroker:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        cmd = [sys.executable, "-m", "mq", "serve", "--host", "127.0.0.1", "--port", "0",
               "--db", str(self.db_path), "--sync", self.sync]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Its own session: a Ctrl-C meant for the harness must not kill the broker mid-run.
            start_new_session=True)
        listening = threading.Event()
        threading.Thread(target=self._read_log, args=(self._proc, listening), daemon=True,
                         name="mq-bench-broker-log").start()
        if not listening.wait(START_TIMEOUT_S) or self._proc.poll() is not None:
            raise RuntimeError("the broker did not start:\n" + "".join(self.log))

    def _read_log(self, proc: subprocess.Popen[str], listening: threading.Event) -> None:
        # Drained all along: a full pipe would stall the broker's logging, and so the broker.
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            match = LISTENING.search(line)
            if match and not listening.is_set():
                self.port = int(match.group(1))
                listening.set()
        listening.set()  # the broker exited: stop waiting, start() checks poll()

    def close(self) -> None:
        """Stop the broker (if running) and remove its directory."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        shutil.rmtree(self.dir, ignore_errors=True)


class BrokerMonitor:
    """CPU seconds of a process over a marked window, and its peak RSS sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True,
                                        name="mq-bench-broker-rss")
        self._cpu_start_s: float | None = None
        self._cpu_end_s: float | None = None
        self.rss_start_bytes = self._rss()
        self.rss_peak_bytes = self.rss_start_bytes

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def mark_start(self) -> None:
        """The measured window begins: remember the CPU time used so far."""
        self._cpu_start_s = self._cpu()

    def mark_end(self) -> None:
        self._cpu_end_s = self._cpu()
        self._note_rss()

    def rss_bytes(self) -> int:
        """The process's resident set size now, in bytes (0 if it cannot be read)."""
        return self._rss()

    @property
    def cpu_s(self) -> float | None:
        """User + system CPU seconds used between mark_start and mark_end."""
        if self._cpu_start_s is None or self._cpu_end_s is None:
            return None
        return self._cpu_end_s - self._cpu_start_s

    def _cpu(self) -> float | None:
        try:
            times = self._proc.cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    def _rss(self) -> int:
        try:
            return int(self._proc.memory_info().rss)
        except psutil.Error:
            return 0

    def _note_rss(self) -> None:
        self.rss_peak_bytes = max(self.rss_peak_bytes, self._rss())

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_INTERVAL_S):
            self._note_rss()
