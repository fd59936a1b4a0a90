"""The Celery app that tests/e2e/test_celery.py runs in real worker processes.

Configured from the environment, as a deployed app would be: `MQ_URL` (the broker), `RESULTS`
(a directory for Celery's filesystem result backend) and `MARKS` (a directory where tasks leave
a file per run, so a test can see what ran where, even in a worker it killed). `SLOW_TASK`: the
argument of `mark` that stalls for a minute in this worker (a task in progress to kill it in).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import mq_client.kombu_transport  # noqa: F401  # registers mq:// with kombu
from celery import Celery, Task

app = Celery("celery_tasks", broker=os.environ.get("MQ_URL", "mq://127.0.0.1:7711"),
             backend=f"file://{os.environ.get('RESULTS', '/tmp/mq-celery-results')}")
app.conf.update(broker_connection_retry_on_startup=True, worker_redirect_stdouts=False)
MARKS = Path(os.environ.get("MARKS", "."))


@app.task(name="e2e.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="e2e.now")
def now() -> float:
    """When the task ran, Unix seconds."""
    return time.time()


@app.task(name="e2e.flaky", bind=True, autoretry_for=(ValueError,), max_retries=2,
          default_retry_delay=0)
def flaky(self: Task[Any, Any], tag: str) -> None:
    (MARKS / f"flaky-{tag}-{self.request.retries}").touch()
    raise ValueError(f"flaky failure {self.request.retries}")


@app.task(name="e2e.mark", acks_late=True)
def mark(i: int) -> int:
    """Leave `start-<i>-<pid>`, work a little, leave `done-<i>`."""
    (MARKS / f"start-{i}-{os.getpid()}").touch()
    time.sleep(60 if str(i) == os.environ.get("SLOW_TASK") else 0.02)
    (MARKS / f"done-{i}").touch()
    return i
