"""Celery on mq, end to end: a real broker process, real `celery worker` processes (solo pool),
the app in tests/e2e/celery_tasks.py, results through Celery's filesystem backend.

Why the filesystem backend: it needs no server and works across processes (the worker writes a
file per result, the test reads it). `cache+memory` lives in one process, and `rpc://` needs
replies routed by the broker to a queue that only the caller declared, which this transport
does not do (README, "Use mq with Celery").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

celery = pytest.importorskip("celery", reason="needs Celery: pip install -e '.[dev]'")

import mq_client.kombu_transport  # noqa: E402, F401  # registers mq://
from celery import Celery  # noqa: E402
from celery.result import AsyncResult  # noqa: E402
from mq_client import Client  # noqa: E402

from tests.harness import BrokerProcess, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULT_TIMEOUT_S = 30.0
Shared = tuple[BrokerProcess, dict[str, str]]


class Worker:
    """`celery worker --pool=solo` for tests/e2e/celery_tasks.py, in a child process."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.log: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Worker:
        path = os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python"),
                                os.environ.get("PYTHONPATH", "")])
        cmd = [sys.executable, "-m", "celery", "-A", "tests.e2e.celery_tasks", "worker",
               "--pool=solo", "-n", f"{self.name}@%h", "--without-mingle", "--without-gossip",
               "-l", "info", "-Q", self.env.get("QUEUES", "celery")]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **self.env, "PYTHONPATH": path})
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()
        wait_until(lambda: any(" ready." in line for line in self.log) or self.proc is None or
                   self.proc.poll() is not None, f"worker {self.name} is ready", timeout_s=30)
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n" + "".join(self.log))
        return self

    def _read_log(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: ends its task, gives back what it prefetched
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _dirs(root: Path) -> dict[str, str]:
    (root / "results").mkdir()
    (root / "marks").mkdir()
    return {"RESULTS": str(root / "results"), "MARKS": str(root / "marks")}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One broker and one worker for the tests that kill nothing: each test has its own queue."""
    root = tmp_path_factory.mktemp("celery")
    dirs = _dirs(root)
    with BrokerProcess(root / "mq.db", "--sync", "normal") as broker, \
            Worker("w1", {"MQ_URL": broker.url, "QUEUES": "sums,retries,later", **dirs}):
        yield broker, dirs


def _producer(broker: BrokerProcess, dirs: dict[str, str]) -> Celery:
    """The producer's side: an app that knows the tasks by name only, as another service would."""
    return Celery("producer", broker=broker.url, backend=f"file://{dirs['RESULTS']}")


def _queue_stats(broker: BrokerProcess, queue: str) -> dict[str, int]:
    with Client.connect(broker.url) as mq:
        counts: dict[str, int] = mq.stats(queue)["queues"].get(queue, {})
        return counts


def _acked(broker: BrokerProcess, queue: str, count: int) -> dict[str, int]:
    """The queue's stats once `count` messages are acked (acks go out just after the results)."""
    return wait_until(lambda: (s := _queue_stats(broker, queue))["acked"] == count and s,
                      f"{count} messages of {queue} are acked")


def _values(results: list[AsyncResult[Any]]) -> list[Any]:
    return [r.get(timeout=RESULT_TIMEOUT_S, interval=0.02) for r in results]


def test_200_tasks_run_and_return_their_results(shared: Shared) -> None:
    broker, dirs = shared
    with _producer(broker, dirs) as app:
        results = [app.send_task("e2e.add", args=(i, 1000), queue="sums") for i in range(200)]
        assert _values(results) == [i + 1000 for i in range(200)]
    stats = _acked(broker, "sums", 200)
    assert (stats["published"], stats["ready"], stats["leased"]) == (200, 0, 0)


def test_a_failing_task_is_retried_then_given_up_on(shared: Shared) -> None:
    broker, dirs = shared
    with _producer(broker, dirs) as app:
        result = app.send_task("e2e.flaky", args=("a",), queue="retries")
        with pytest.raises(Exception, match="flaky failure 2"):
            result.get(timeout=RESULT_TIMEOUT_S, interval=0.02)
        assert result.state == "FAILURE"
    runs = sorted(p.name for p in Path(dirs["MARKS"]).glob("flaky-a-*"))
    assert runs == ["flaky-a-0", "flaky-a-1", "flaky-a-2"]
    # A retry is a new message (Celery republishes it); each is acked once handled.
    stats = _acked(broker, "retries", 3)
    assert (stats["published"], stats["ready"], stats["leased"]) == (3, 0, 0)


def test_countdown_runs_no_earlier_than_asked_and_waits_in_the_broker(
        shared: Shared) -> None:
    broker, dirs = shared
    with _producer(broker, dirs) as app:
        sent_at = time.time()
        result = app.send_task("e2e.now", countdown=2, queue="later")
        # Held by the broker, not leased to the worker: a killed worker could not lose it.
        assert _queue_stats(broker, "later")["delayed"] == 1
        ran_at = result.get(timeout=RESULT_TIMEOUT_S, interval=0.02)
    assert ran_at - sent_at >= 2.0


def test_a_message_that_is_not_a_kombu_envelope_is_given_back_and_the_worker_goes_on(
        shared: Shared) -> None:
    broker, dirs = shared
    with Client.connect(broker.url) as mq:
        stray = mq.publish("later", b"not json at all")
    with _producer(broker, dirs) as app:
        assert app.send_task("e2e.now", queue="later").get(timeout=RESULT_TIMEOUT_S,
                                                           interval=0.02) > 0
    with Client.connect(broker.url) as mq:
        explained = wait_until(lambda: (e := mq.explain(stray))["state"] == "delayed" and e,
                               "the stray message is given back with a delay")
    assert explained["last_error"].startswith("not a kombu message")


def test_tasks_of_a_worker_killed_mid_task_are_run_by_another_and_none_is_lost(
        tmp_path: Path) -> None:
    dirs = _dirs(tmp_path)
    marks = Path(dirs["MARKS"])
    count = 20
    with BrokerProcess(tmp_path / "mq.db", "--sync", "normal", "--grace-s", "0.5") as broker, \
            _producer(broker, dirs) as app:
        with Worker("w1", {"MQ_URL": broker.url, "SLOW_TASK": "5", **dirs}) as first:
            results = [app.send_task("e2e.mark", args=(i,)) for i in range(count)]
            wait_until(lambda: list(marks.glob("start-5-*")), "worker 1 started task 5 (it stalls)")
            first.kill()  # SIGKILL in the middle of task 5, with tasks it prefetched still leased
        assert not (marks / "done-5").exists()
        with Worker("w2", {"MQ_URL": broker.url, **dirs}) as second:
            assert _values(results) == list(range(count))
            stats = _acked(broker, "celery", count)
            second.kill()  # all is acked: no need to wait out a warm shutdown
    assert {p.name for p in marks.glob("done-*")} == {f"done-{i}" for i in range(count)}
    # Task 5 ran twice: killed in the first worker, run again (acks_late) in the second.
    assert len(list(marks.glob("start-5-*"))) == 2
    assert (stats["ready"], stats["leased"], stats["expired"]) == (0, 0, 0)
    assert stats["released"] >= 1  # given back because their holder died, not at lease expiry
