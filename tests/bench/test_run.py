"""Tiny bench runs against real brokers, through the entry point of the `mq` command.

No test asserts a speed: they check that every message sent was received exactly once, that
the figures are consistent, and that every run ends by itself and cleans up after itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mq.cli import main
from tests.harness import BrokerProcess


def bench(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "report.json"
    code = main(["bench", "--no-progress", "--dir", str(tmp_path), "--timeout", "60",
                 "--json", str(out), *args])
    return code, json.loads(out.read_text())


def assert_ordered(latency: dict[str, Any], count: int) -> None:
    assert latency["count"] == count
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["p99.9"] <= latency["max"]


@pytest.mark.parametrize("consume", ["sub", "get"])
def test_e2e_in_processes_receives_every_message_exactly_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], consume: str) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--producers", "2", "--consumers", "2",
                    "--count", "2000", "--size", "64", "--batch", "50", "--prefetch", "50",
                    "--consume", consume)
    assert code == 0
    assert r["options"]["consume"] == consume
    c = r["counts"]
    assert c["sent"] == c["confirmed"] == c["received"] == c["unique"] == c["acked"] == 2000
    assert c["errors"] == c["duplicates"] == c["not_received"] == 0
    assert r["errors"] == []
    assert r["harness"] == {**r["harness"], "workers": 4, "processes": True}
    assert_ordered(r["publish"]["latency_us"], 2000)
    assert_ordered(r["consume"]["latency_us"], 2000)
    assert r["publish"]["msgs_per_s"] > 0 and r["consume"]["mb_per_s"] > 0
    broker = r["broker"]
    assert broker["started_by_bench"] and broker["sync"] == "full"
    assert broker["cpu_s"] > 0 and broker["rss_peak_mb"] >= broker["rss_start_mb"] > 0
    printed = capsys.readouterr().out
    assert "publish->deliver" in printed and "duplicates 0" in printed
    assert ("pushed (sub)" if consume == "sub" else "polled (get)") in printed.splitlines()[0]
    assert not list(tmp_path.glob("mq-bench-*")), "the broker's temp dir was not removed"


def test_sub_is_the_default_and_takes_a_prefetch_above_a_get_s(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--count", "1500", "--prefetch", "2000",
                    "--rate", "5000", "--sync", "normal")
    assert code == 0
    assert (r["options"]["consume"], r["options"]["prefetch"]) == ("sub", 2000)
    c = r["counts"]
    assert c["confirmed"] == c["received"] == c["unique"] == c["acked"] == 1500
    assert c["duplicates"] == c["redeliveries"] == c["errors"] == 0
    assert_ordered(r["consume"]["latency_us"], 1500)


def test_idle_connections_are_held_beside_the_run_and_their_rss_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--count", "1000", "--consume", "sub",
                    "--idle-connections", "50")
    assert code == 0
    c = r["counts"]
    assert c["sent"] == c["confirmed"] == c["received"] == c["unique"] == c["acked"] == 1000
    assert c["errors"] == c["duplicates"] == c["not_received"] == 0
    idle = r["idle"]
    assert idle["connections"] == 50 and r["options"]["idle_connections"] == 50
    assert idle["broker_connections"] >= 51  # the idle ones and the one that asked
    assert idle["rss_before_mb"] > 0 and idle["rss_after_mb"] > 0
    assert idle["rss_delta_mb"] == pytest.approx(idle["rss_after_mb"] - idle["rss_before_mb"])
    assert idle["kb_per_connection"] == pytest.approx(idle["rss_delta_mb"] * 1000 / 50)
    assert "idle      50 connections: rss" in capsys.readouterr().out


def test_no_idle_section_without_idle_connections(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "publish", "--count", "200")
    assert code == 0
    assert r["idle"] is None and r["options"]["idle_connections"] == 0


def test_open_loop_measures_from_the_schedule(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--rate", "4000", "--count", "1000",
                    "--sync", "normal")
    assert code == 0
    assert r["options"]["batch"] == 1  # --rate makes one message per request the default
    c = r["counts"]
    assert c["confirmed"] == c["received"] == c["unique"] == 1000
    assert r["harness"]["send_lag_us"]["count"] == 1000
    assert r["broker"]["sync"] == "normal"
    assert r["publish"]["seconds"] >= 0.2  # 1,000 messages at 4,000/s take a quarter second


@pytest.mark.parametrize("ack", ["batch", "each"])
def test_consume_scenario_prefills_then_drains_in_process(tmp_path: Path, ack: str) -> None:
    code, r = bench(tmp_path, "--scenario", "consume", "--count", "1500", "--prefetch", "200",
                    "--ack", ack)
    assert code == 0
    assert r["options"]["ack"] == ack
    assert r["prefill"]["messages"] == 1500
    assert r["publish"] is None
    assert r["consume"]["latency_us"] is None  # prefilled bodies carry no useful publish time
    c = r["counts"]
    assert c["received"] == c["unique"] == c["acked"] == 1500
    assert r["harness"]["processes"] is False


@pytest.mark.parametrize(("batch", "keys"), [("1", "0"), ("8", "3")])
def test_publish_one_at_a_time_and_keyed_pipeline(tmp_path: Path, batch: str, keys: str) -> None:
    code, r = bench(tmp_path, "--scenario", "publish", "--count", "300", "--batch", batch,
                    "--keys", keys)
    assert code == 0
    assert r["consume"] is None
    assert r["counts"]["confirmed"] == 300
    assert_ordered(r["publish"]["latency_us"], 300)


def test_duration_stops_the_producers_and_consumers_drain(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--count", "1000000000", "--duration", "0.5",
                    "--batch", "20")
    assert code == 0
    c = r["counts"]
    assert 0 < c["confirmed"] < 1_000_000_000
    assert c["received"] == c["unique"] == c["confirmed"]
    assert r["publish"]["seconds"] < 5


def test_url_targets_a_running_broker(tmp_path: Path, broker: BrokerProcess) -> None:
    assert broker.proc is not None
    code, r = bench(tmp_path, "--url", broker.url, "--broker-pid", str(broker.proc.pid),
                    "--scenario", "publish", "--count", "500", "--queue", "mine")
    assert code == 0
    assert r["broker"]["started_by_bench"] is False
    assert r["broker"]["cpu_s"] is not None and r["options"]["queue"] == "mine"
    assert r["counts"]["confirmed"] == 500


def test_floor_ratios_come_with_the_run(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "publish", "--count", "500", "--floor",
                    "--floor-duration", "0.1")
    assert code == 0
    [ratio] = r["ratios"]
    assert ratio["figure"] == "publish msgs/s" and ratio["floor"] == "SQLite rows/s (full)"
    assert ratio["ratio"] == pytest.approx(ratio["value"] / ratio["floor_value"])


@pytest.mark.parametrize("args", [
    ["--scenario", "e2e", "--size", "4"],  # too small for the publish time
    ["--prefetch", "0"],
    ["--batch", "0"],
    ["--scenario", "consume", "--rate", "10"],
    ["--consume", "get", "--prefetch", "2000"],  # a get takes at most 1,000
    ["--consume", "sub", "--prefetch", "20000"],
    ["--idle-connections", "-1"],
    ["--idle-connections", "20000"],
    ["--idle-connections", "5", "--url", "mq://192.0.2.1:7711"],  # loopback only
])
def test_bad_options_exit_2_before_starting_anything(
        tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--dir", str(tmp_path), *args]) == 2
    assert "mq bench:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_warm_passes_messages_through_the_queue_before_the_run(tmp_path: Path) -> None:
    code, r = bench(tmp_path, "--scenario", "e2e", "--warm", "2500", "--count", "300",
                    "--sync", "normal")
    assert code == 0
    assert r["warm"]["messages"] == 2500
    c = r["counts"]
    assert c["confirmed"] == c["received"] == c["unique"] == 300  # the warm-up left nothing
    assert r["broker"]["committed_changes"] >= 300


def test_hostile_reports_ping_latency_and_rss_beside_a_hostile_client(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "hostile", "waiters", "peeks", "--attack-s", "0.3"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["scenario", "pings"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"waiters", "peeks"}
    assert all(int(r[1].replace(",", "")) > 0 for r in rows.values())  # PINGs were answered
    assert all("yes" in r for r in rows.values())  # the broker outlived every hostile client
