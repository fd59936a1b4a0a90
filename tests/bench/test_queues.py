"""`mq bench --queues N`: the queues it picks, how workers share them, and small runs against
real brokers on 127.0.0.1 that check every message was delivered once across the queues and
that each broker's figures add up. (The 3-broker cluster run is in tests/cluster.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from mq_client import Client
from mq_client.slots import SLOTS, slot_of

from mq.bench.placement import share, spread_names
from mq.cli import main
from tests.bench.test_run import bench
from tests.harness import BrokerProcess

THREE = ["127.0.0.1:7811", "127.0.0.1:7812", "127.0.0.1:7813"]


def _three_way_map() -> dict[int, str]:
    # Not ranges: a ring spreads each broker's slots over the whole space.
    return {slot: THREE[slot * 7 % 3] for slot in range(SLOTS)}


def test_names_fall_on_distinct_slots_queue_i_on_broker_i_mod_b() -> None:
    owner = _three_way_map()
    names = spread_names("bench-x", 7, owner)
    assert len({slot_of(n) for n in names}) == 7
    assert [owner[slot_of(n)] for n in names] == [THREE[i % 3] for i in range(7)]
    assert all(n.startswith("bench-x-") for n in names)


def test_a_single_broker_gets_plain_numbered_names() -> None:
    assert spread_names("b", 3, None) == ["b-0", "b-1", "b-2"]


def test_more_queues_than_a_broker_has_slots_is_refused() -> None:
    owner = {0: THREE[0], 1: THREE[1]}
    with pytest.raises(ValueError, match="give fewer --queues"):
        spread_names("b", 3, owner)


def test_every_queue_gets_a_worker_and_every_worker_a_queue() -> None:
    queues = ["q0", "q1", "q2", "q3", "q4"]
    assert [share(queues, 2, w) for w in range(2)] == [("q0", "q2", "q4"), ("q1", "q3")]
    assert [share(queues, 7, w) for w in range(7)] == [
        ("q0",), ("q1",), ("q2",), ("q3",), ("q4",), ("q0",), ("q1",)]


def test_e2e_over_queues_delivers_every_message_once_and_reports_the_broker(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--queues", "3", "--producers", "2",
                    "--consumers", "2", "--count", "1200", "--batch", "20", "--prefetch", "50")
    assert code == 0, r["errors"]
    c = r["counts"]
    assert c["sent"] == c["confirmed"] == c["received"] == c["unique"] == c["acked"] == 1200
    assert c["errors"] == c["duplicates"] == 0
    queues = r["queues"]
    assert len(set(queues)) == 3 and all(q.startswith(r["options"]["queue"] + "-") for q in queues)
    [row] = r["brokers"]
    assert row["queues"] == 3 and row["node"] is None  # one broker, not in a cluster
    assert row["published"] == row["acked"] == row["messages"] == 1200
    assert row["cpu_s"] > 0 and row["cpu_us_per_msg"] == pytest.approx(row["cpu_s"] * 1e6 / 1200)
    assert row["commits"] == r["broker"]["commits"] > 0
    printed = capsys.readouterr().out
    assert "3 queues" in printed.splitlines()[1] and "per broker" in printed


def test_consume_over_queues_of_a_running_broker_drains_each_queue(
        tmp_path: Path, broker: BrokerProcess) -> None:
    assert broker.proc is not None
    code, r = bench(tmp_path, "--url", broker.url, "--broker-pid", str(broker.proc.pid),
                    "--scenario", "consume", "--queues", "4", "--consumers", "3",
                    "--count", "1000", "--consume", "get", "--queue", "cq")
    assert code == 0, r["errors"]
    assert r["counts"]["received"] == r["counts"]["unique"] == r["counts"]["acked"] == 1000
    [row] = r["brokers"]
    assert (row["published"], row["acked"], row["pid"]) == (0, 1000, broker.proc.pid)
    assert row["cpu_s"] is not None
    with Client.connect(broker.url) as mq:
        queues = mq.stats()["queues"]
    assert sorted(q for q in queues if q.startswith("cq-")) == ["cq-0", "cq-1", "cq-2", "cq-3"]
    # The prefill spread the messages evenly, and the run drained every queue.
    assert [queues[f"cq-{i}"]["acked"] for i in range(4)] == [250] * 4
    assert all(queues[f"cq-{i}"]["ready"] == 0 for i in range(4))


def test_without_queues_the_report_has_no_per_broker_part(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, r = bench(tmp_path, "--scenario", "publish", "--count", "200")
    assert code == 0
    assert "brokers" not in r and "queues" not in r and "pids" not in r["broker"]
    assert "per broker" not in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["--queues", "0"],
    ["--queues", "1025"],
    ["--queues", "2", "--queue", "q" * 195],  # no room left for the -<j> suffix
    ["--idle-connections", "5", "--url", "mq://127.0.0.1:7811,127.0.0.1:7812"],
])
def test_bad_queue_options_exit_2(tmp_path: Path, args: list[str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--dir", str(tmp_path), *args]) == 2
    said = capsys.readouterr().err
    assert said.startswith("mq bench: ") and ("queue" in said or "seed list" in said)


def test_a_bad_pid_list_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--broker-pid", "12,x"])
    assert exited.value.code == 2
    assert "expected PID or PID,PID" in capsys.readouterr().err
