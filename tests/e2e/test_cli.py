"""The `mq` command as a person meets it: bad settings and a bad database file say what to do;
`mq stats` prints a table, or says where no broker answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mq_client import Client

from tests.harness import BrokerProcess


def run_mq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mq", *args], capture_output=True, text=True,
                          timeout=30)


def test_a_file_that_is_not_a_database_is_refused_and_the_process_exits(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 16)
    out = run_mq("serve", "--port", "0", "--db", str(garbage))
    assert out.returncode == 1
    assert "cannot use" in out.stderr and "Point --db at an mq log" in out.stderr
    assert garbage.read_bytes() == bytes(range(256)) * 16  # not touched


def test_bad_settings_are_refused_with_their_bounds(tmp_path: Path) -> None:
    out = run_mq("serve", "--port", "0", "--db", str(tmp_path / "x.db"), "--lease-s", "0")
    assert out.returncode == 2
    assert "lease_s must be" in out.stderr


def test_mq_stats_prints_a_table(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        mq.publish("pizzas", b"funghi")
    out = run_mq("stats", "--url", broker.url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("mq ")
    assert lines[2].split()[:2] == ["queue", "ready"]
    assert lines[3].split()[:2] == ["pizzas", "1"]
    down = run_mq("stats", "--url", "mq://127.0.0.1:1")
    assert down.returncode == 1 and "Is a broker running there?" in down.stderr
