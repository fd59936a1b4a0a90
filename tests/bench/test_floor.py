"""`mq bench floor` with very short durations, and the mapping of broker figures to floors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mq.bench.floor import floor_ratios, run_floor
from mq.cli import main

FLOOR: dict[str, Any] = {
    "duration_s": 1.0, "dir": "/tmp", "echo_frames_per_s": 300_000.0,
    "echo_round_trips_per_s": 10_000.0,
    "sqlite_rows_per_s": {"full": 500_000.0, "normal": 600_000.0}, "fsyncs_per_s": 5_000.0,
}


def test_floor_command_measures_every_figure(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "floor.json"
    assert main(["bench", "floor", "--duration", "0.1", "--dir", str(tmp_path),
                 "--json", str(out)]) == 0
    floor = json.loads(out.read_text())
    assert floor["echo_frames_per_s"] > 0 and floor["echo_round_trips_per_s"] > 0
    assert floor["sqlite_rows_per_s"]["full"] > 0 and floor["sqlite_rows_per_s"]["normal"] > 0
    assert floor["fsyncs_per_s"] > 0
    assert "fsyncs/s" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [out], "the floor's files were not removed"


def test_run_floor_takes_its_duration_as_a_parameter(tmp_path: Path) -> None:
    floor = run_floor(duration_s=0.05, parent_dir=str(tmp_path))
    assert floor["duration_s"] == 0.05 and floor["dir"] == str(tmp_path)


def report(sync: str, batch: int, keys: int = 0, rate: float | None = None,
           consume: bool = False) -> dict[str, Any]:
    return {
        "options": {"sync": sync, "batch": batch, "keys": keys, "rate": rate},
        "broker": {"sync": sync},
        "publish": {"msgs_per_s": 2_500.0},
        "consume": {"msgs_per_s": 150_000.0} if consume else None,
    }


@pytest.mark.parametrize(("r", "floor_name", "ratio"), [
    (report("full", 1), "fsyncs/s", 0.5),  # one at a time, strict: one fsync per message
    (report("normal", 1), "echo round trips/s", 0.25),  # one at a time: one round trip each
    (report("full", 100), "SQLite rows/s (full)", 0.005),  # batched: SQLite inserts
    # Keyed pubs are one frame per message: the echo is the lower of the two floors.
    (report("normal", 8, keys=2), "echo frames/s", 2_500 / 300_000),
])
def test_each_publish_figure_meets_its_own_floor(r: dict[str, Any], floor_name: str,
                                                 ratio: float) -> None:
    [publish] = floor_ratios(r, FLOOR)
    assert publish["floor"] == floor_name
    assert publish["ratio"] == pytest.approx(ratio)


def test_consume_is_held_to_the_lower_of_echo_and_sqlite() -> None:
    _, consume = floor_ratios(report("full", 100, consume=True), FLOOR)
    assert consume["floor"] == "echo frames/s"
    assert consume["ratio"] == pytest.approx(0.5)
