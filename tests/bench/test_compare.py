"""`mq bench compare`: two reports side by side with ratios B/A."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mq.bench.compare import compare, option_changes
from mq.bench.options import BenchOptions
from mq.bench.report import build_report, render
from mq.bench.workers import WorkerResult
from mq.cli import main

SECOND_NS = 10**9


def fake_report(msgs_per_s: int, batch: int) -> dict[str, Any]:
    """A report built from made-up worker results: one second of publishing."""
    producer = WorkerResult("producer", 0, sent=msgs_per_s, confirmed=msgs_per_s,
                            started_ns=SECOND_NS, last_ns=2 * SECOND_NS, cpu_s=0.5)
    producer.confirm.record(1_000_000, msgs_per_s)  # 1 ms each
    broker = {"url": "mq://127.0.0.1:7711", "started_by_bench": True, "pid": 1, "sync": "full",
              "cpu_s": 0.8, "rss_start_mb": 30.0, "rss_peak_mb": 40.0, "commits": 10,
              "committed_changes": msgs_per_s}
    opts = BenchOptions(scenario="publish", count=msgs_per_s, batch=batch)
    return build_report(opts, broker, None, [producer], [], None, [])


def write(path: Path, report: dict[str, Any]) -> str:
    path.write_text(json.dumps(report))
    return str(path)


def test_a_fake_report_has_consistent_figures() -> None:
    r = fake_report(50_000, 100)
    assert r["publish"]["msgs_per_s"] == pytest.approx(50_000)
    assert r["publish"]["mb_per_s"] == pytest.approx(5.0)
    assert r["publish"]["latency_us"]["p50"] == pytest.approx(1_000, rel=0.01)
    assert r["broker"]["cpu_us_per_msg"] == pytest.approx(16.0)
    assert "50,000" in render(r)


def test_compare_gives_ratios_b_over_a() -> None:
    rows = {label: (a, b, ratio) for label, a, b, ratio in
            compare(fake_report(50_000, 100), fake_report(100_000, 1000))}
    assert rows["publish msgs/s"] == pytest.approx((50_000, 100_000, 2.0))
    assert rows["publish->confirm p50 us"][2] == pytest.approx(1.0)
    assert "consume msgs/s" not in rows  # neither run consumed


def test_option_changes_leave_out_the_incidental_ones() -> None:
    assert option_changes(fake_report(1, 100), fake_report(1, 1000)) == ["batch 100 -> 1000"]


def test_compare_command_prints_both_runs(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.json", fake_report(50_000, 100))
    b = write(tmp_path / "b.json", fake_report(100_000, 1000))
    assert main(["bench", "compare", a, b]) == 0
    out = capsys.readouterr().out
    publish = next(line for line in out.splitlines() if line.startswith("publish msgs/s"))
    assert publish.split() == ["publish", "msgs/s", "50,000", "100,000", "2.00"]
    assert "batch 100 -> 1000" in out


def test_compare_refuses_what_is_not_a_report(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.json", fake_report(1, 1))
    b = write(tmp_path / "b.json", {"something": "else"})
    assert main(["bench", "compare", a, b]) == 2
    assert "not a report" in capsys.readouterr().err
