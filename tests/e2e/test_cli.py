"""The `mq` command as a person meets it: bad settings and a bad database file say what to do;
the client subcommands publish, lease, show and remove messages of a real broker process, fit
80 columns, and a wrong URL or a broker that is not there gets one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mq_client
from mq_client import Client

import mq
from tests.harness import BrokerProcess, TextSession, wait_until


def run_mq(*args: str, stdin: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mq", *args], capture_output=True, text=True,
                          input=stdin, timeout=30, env={**os.environ, **(env or {})})


def one_line_failure(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    return out.stderr


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
    assert "--lease-s must be" in out.stderr


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


def test_pub_get_peek_purge_and_queues_round_trip(broker: BrokerProcess) -> None:
    url = ["--url", broker.url]
    assert run_mq("pub", "orders", "margherita, table 4", *url).stdout == "1\n"
    lines = "diavola\nmarinara\r\nfunghi\n"
    assert run_mq("pub", "orders", *url, stdin=lines).stdout == "2\n3\n4\n"
    assert run_mq("queues", *url).stdout == "orders\n"

    peeked = run_mq("peek", "orders", "--count", "2", *url).stdout.splitlines()
    assert peeked[0].split() == ["msg_id", "deliveries", "priority", "key", "body"]
    assert peeked[1].split()[0] == "1" and peeked[1].endswith("margherita, table 4")
    assert len(peeked) == 3

    leased = json.loads(run_mq("get", "orders", "--json", *url).stdout)
    assert (leased["msg_id"], leased["body"], leased["acked"]) == (1, "margherita, table 4", False)
    # not acked: its lease ended with the command's connection, so it is first in line again
    taken = run_mq("get", "orders", "--ack", "--max", "2", *url).stdout
    assert taken == "margherita, table 4\ndiavola\n"
    with Client.connect(broker.url) as client:
        stats = client.stats("orders")["queues"]["orders"]
    assert (stats["acked"], stats["leased"], stats["ready"]) == (2, 0, 2)

    assert run_mq("purge", "orders", *url).stdout == "purged 2 messages from orders\n"
    assert run_mq("get", "orders", *url).stdout == ""


def test_explain_and_history_say_where_a_message_is_and_was(broker: BrokerProcess) -> None:
    url = ["--url", broker.url]
    run_mq("pub", "orders", "funghi", *url)
    run_mq("get", "orders", "--ack", *url)
    explained = run_mq("explain", "1", *url).stdout.splitlines()
    assert explained[0].startswith("1: gone: ")
    events = [line.split()[3] for line in run_mq("history", "1", *url).stdout.splitlines()]
    assert events == ["published", "leased", "acked"]
    missing = one_line_failure(run_mq("history", "99", *url))
    assert "nothing of message 99" in missing


def test_tail_prints_events_as_they_happen(broker: BrokerProcess) -> None:
    tail = subprocess.Popen([sys.executable, "-m", "mq", "tail", "orders", "--count", "2",
                             "--json", "--url", broker.url], stdout=subprocess.PIPE, text=True)
    with Client.connect(broker.url) as client:
        deadline = time.monotonic() + 20
        while tail.poll() is None and time.monotonic() < deadline:  # until it has seen two
            client.publish("orders", b"x")
            time.sleep(0.05)
    out, _ = tail.communicate(timeout=10)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["published", "published"]
    assert tail.returncode == 0


def test_tables_fit_80_columns(broker: BrokerProcess) -> None:
    long_name = "orders-of-the-north-eastern-region-and-the-islands-beyond-the-sea"
    with Client.connect(broker.url) as client:
        client.publish_many(long_name, [b"x" * 200] * 12_345)
        client.hello("an-oven-with-a-very-long-name-indeed-for-its-size", heartbeat_s=30)
        client.join(long_name, "kitchen-of-the-north", prefetch=10)
        for cmd in (["stats"], ["peek", long_name]):
            out = run_mq(*cmd, "--url", broker.url)
            assert out.returncode == 0, out.stderr
            assert max(len(line) for line in out.stdout.splitlines()) <= 80, out.stdout
            assert "12.3k" in out.stdout or cmd[0] == "peek"
    figures = json.loads(run_mq("stats", "--json", "--url", broker.url).stdout)
    assert figures["queues"][long_name]["ready"] == 12_345


def test_a_wrong_url_or_no_broker_gets_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    for command in (["stats"], ["pub", "q", "x"], ["tail"], ["get", "q"]):
        bad = one_line_failure(run_mq(*command, "--url", "http://127.0.0.1:7711"))
        assert "expected mq://host:port" in bad and "--url (or MQ_URL)" in bad
        down = one_line_failure(run_mq(*command, env={"MQ_URL": "mq://127.0.0.1:1"}))
        assert "mq://127.0.0.1:1" in down and "Is a broker running there?" in down


def test_version_is_the_one_both_packages_carry() -> None:
    out = run_mq("--version")
    assert out.stdout == f"mq {mq.__version__}\n"
    assert mq.__version__ == mq_client.__version__


def test_a_port_in_use_is_refused_before_the_log_is_touched(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "first.db") as first:
        db = tmp_path / "second.db"
        out = run_mq("serve", "--port", str(first.port), "--db", str(db))
        assert "Address already in use" in one_line_failure(out)
        assert "choose another --port" in out.stderr
        assert not db.exists()


def test_a_log_in_a_place_that_cannot_hold_one_gets_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for db in (a_file / "mq.db", Path("/proc/mq-test/mq.db")):  # under a file; read-only fs
        out = run_mq("serve", "--port", "0", "--db", str(db))
        assert "cannot create the log" in one_line_failure(out)
        assert "Point --db at a file in a directory this user may write" in out.stderr


def test_nan_and_nonsense_are_refused_naming_the_flag(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "x.db")]
    assert "--grace-s must be a finite number" in one_line_failure(
        run_mq("serve", *db, "--grace-s", "nan"), 2)
    assert "--port must be a whole number" in one_line_failure(
        run_mq("serve", *db, "--port", "7e3"), 2)
    assert "MQ_HEARTBEAT_S must be a finite number" in one_line_failure(
        run_mq("serve", *db, env={"MQ_HEARTBEAT_S": "inf"}), 2)
    assert not (tmp_path / "x.db").exists()


def test_a_config_file_sets_what_flags_and_variables_do_not(tmp_path: Path) -> None:
    config = tmp_path / "mq.toml"
    config.write_text("lease_s = 7\ngrace_s = 1.5\nlog_format = 'json'\n")
    with BrokerProcess(tmp_path / "mq.db", "--config", str(config), "--grace-s", "2") as proc:
        started = json.loads(next(line for line in proc.log if "listening" in line))
    assert "lease_s=7 " in started["message"] and "grace_s=2 " in started["message"]
    shown = run_mq("serve", "--config", str(config), "--print-config",
                   env={"MQ_LEASE_S": "8"}).stdout
    assert "lease_s = 8.0  # from MQ_LEASE_S" in shown
    assert f"grace_s = 1.5  # from grace_s in {config}" in shown


def test_the_log_never_holds_a_whole_session_token(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db", "--log-level", "debug", "--log-format", "json",
                       "--grace-s", "0") as proc:
        session = TextSession(proc.port)
        token = session.ask("HELLO oven-1 30").split()[2]
        session.close()  # no QUIT: the session dies after its grace of 0 s, and that is logged
        wait_until(lambda: proc.logged("oven-1", "died"), "the session's death was logged")
    assert len(token) >= 16 and not any(token in line for line in proc.log)
    assert all(json.loads(line)["level"] for line in proc.log)
