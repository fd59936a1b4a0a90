"""A log that cannot be written is an error reply, never a crash and never a lost confirmation.

The broker runs on a small tmpfs mounted by the test, which fills up for real. While it is
full, writes are refused with STORE_FULL and reads keep working; once space is freed, writes
succeed again without a restart; and after a SIGKILL every confirmed message is still there.
Needs root (to mount); skipped with the reason where the machine refuses the mount.
"""

from __future__ import annotations

import http.client
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BrokerProcess, TextSession, wait_until

BODY = "x" * 2_000
MAX_PUBLISHES = 5_000  # a 1 MiB disk is full long before this


def mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    try:
        mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)])
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {e}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def test_a_full_disk_refuses_writes_serves_reads_and_recovers(small_disk: Path) -> None:
    db = small_disk / "mq.db"
    with BrokerProcess(db, "--sync", "normal") as broker:
        t = TextSession(broker.port)
        confirmed: list[int] = []
        refusal = ""
        for _ in range(MAX_PUBLISHES):
            reply = t.ask(f"PUB jobs {BODY}")
            if not reply.startswith("+OK "):
                refusal = reply
                break
            confirmed.append(int(reply.split()[1]))
        assert refusal.startswith("-ERR STORE_FULL "), refusal
        assert confirmed, "the disk was full before the first publish"
        assert broker.proc is not None and broker.proc.poll() is None  # still up
        # Writes are refused, reads work, other clients are served.
        other = TextSession(broker.port)
        assert other.ask("PING") == "+PONG"
        assert other.ask(f"PUB jobs {BODY}").startswith("-ERR STORE_FULL ")
        assert other.ask("GET jobs").startswith("-ERR STORE_FULL ")  # a lease is a write
        other.send("STATS jobs")
        assert other.reply()[-1] == "+OK 1 queues"
        other.send("PEEK jobs 1")
        assert other.reply()[-1] == "+OK 1 messages"
        assert broker.logged("cannot write the log")
        # Space comes back: writes succeed again, with no restart.
        mount(["-o", "remount,size=64m", str(small_disk)])
        wait_until(lambda: other.ask("PUB jobs after").startswith("+OK "),
                   "a publish is confirmed once space is back", timeout_s=10)
        assert other.ask("GET jobs").startswith("MSG ")
        broker.kill()
        # Nothing that was confirmed is lost.
        broker.start()
        again = TextSession(broker.port)
        stored = set()
        for _ in range(len(confirmed) + 10):
            reply = again.ask("GET jobs")
            if reply == "+EMPTY":
                break
            stored.add(int(reply.split()[1].split(".")[0]))
        assert set(confirmed) <= stored


def http_get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def test_readyz_fails_while_the_disk_is_full_and_healthz_does_not(small_disk: Path) -> None:
    with BrokerProcess(small_disk / "mq.db", "--sync", "normal", "--http-port", "0") as broker:
        t = TextSession(broker.port)
        assert http_get(broker.http_port, "/readyz") == (200, "ready\n")
        for _ in range(MAX_PUBLISHES):
            if not t.ask(f"PUB jobs {BODY}").startswith("+OK "):
                break
        status, text = http_get(broker.http_port, "/readyz")
        assert status == 503 and text.startswith("not ready: commits fail: "), text
        assert http_get(broker.http_port, "/healthz") == (200, "ok\n")
        assert "mq_store_writable 0.0" in http_get(broker.http_port, "/metrics")[1]
        mount(["-o", "remount,size=64m", str(small_disk)])
        wait_until(lambda: http_get(broker.http_port, "/readyz")[0] == 200,
                   "/readyz is ready again once space is back", timeout_s=10)


def test_a_row_the_log_file_refuses_is_answered_internal_and_blocks_nothing(tmp_path: Path) -> None:
    db = tmp_path / "mq.db"
    with BrokerProcess(db) as broker:  # makes the log
        assert TextSession(broker.port).ask("PUB q first").startswith("+OK")
    # A row this file refuses for its content (a constraint failing, as a trigger's does): the
    # same rows would fail again, so it must not count as an outage to retry forever.
    conn = sqlite3.connect(db)
    conn.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON log "
                 "WHEN NEW.body = CAST('poison' AS BLOB) "
                 "BEGIN SELECT RAISE(ABORT, 'poison refused'); END")
    conn.commit()
    conn.close()
    with BrokerProcess(db) as broker:
        producer = TextSession(broker.port)
        assert producer.ask("PUB q poison") == "-ERR INTERNAL internal error; see the broker log"
        assert producer.ask("PUB q fine").startswith("+OK")  # the next batch is written
        wait_until(lambda: broker.logged("refused batch", "not written again"), "logged")
        assert broker.logged("poison refused")  # the traceback says what refused it
        assert not broker.logged("cannot write the log")  # no outage
    with BrokerProcess(db) as broker:  # what was stored, and only that, is there after a restart
        consumer = TextSession(broker.port)
        assert [consumer.ask("GET q").split()[-1] for _ in range(2)] == ["first", "fine"]
        assert consumer.ask("GET q") == "+EMPTY"
