"""Two broker processes on one database file: the second is refused at start with a clear
message and exits, the first goes on serving; once the first is gone (even by SIGKILL), a new
broker starts on the file and finds what the first confirmed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mq_client import Client

from tests.harness import BrokerProcess

REFUSED_WITHIN_S = 30.0  # the second broker must exit by itself, and soon


def test_a_second_broker_on_the_same_log_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "mq.db"
    with BrokerProcess(db) as first:
        with Client.connect(first.url) as mq:
            mq.publish("orders", b"one")
        assert first.proc is not None
        second = subprocess.run([sys.executable, "-m", "mq", "serve", "--port", "0",
                                 "--db", str(db)], capture_output=True, text=True,
                                timeout=REFUSED_WITHIN_S)
        assert second.returncode == 1
        assert f"{db} is in use by another mq broker (pid {first.proc.pid}" in second.stderr
        assert "Stop that broker first, or give this one another --db" in second.stderr
        assert "listening" not in second.stderr
        with Client.connect(first.url) as mq:  # the first one never noticed
            mq.publish("orders", b"two")
            assert [m.body for m in mq.get("orders", max=10)] == [b"one", b"two"]
        first.kill()
        with BrokerProcess(db) as third, Client.connect(third.url) as mq:
            assert [m.body for m in mq.get("orders", max=10)] == [b"one", b"two"]


def test_a_second_broker_on_the_same_postgres_database_is_refused(pg_url: str) -> None:
    with BrokerProcess(pg_url) as first:
        with Client.connect(first.url) as mq:
            mq.publish("orders", b"one")
        assert first.proc is not None
        second = subprocess.run([sys.executable, "-m", "mq", "serve", "--port", "0",
                                 "--db", pg_url], capture_output=True, text=True,
                                timeout=REFUSED_WITHIN_S)
        assert second.returncode == 1
        assert (f"{pg_url} is in use by another mq broker (mq broker pid {first.proc.pid}"
                in second.stderr)
        assert "Stop that broker first, or give this one another --db" in second.stderr
        assert "Traceback" not in second.stderr
        with Client.connect(first.url) as mq:
            mq.publish("orders", b"two")
        first.kill()  # Postgres ends the killed broker's session, and its lock with it
        with BrokerProcess(pg_url) as third, Client.connect(third.url) as mq:
            assert [m.body for m in mq.get("orders", max=10)] == [b"one", b"two"]
