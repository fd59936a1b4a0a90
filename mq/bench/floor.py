"""`mq bench floor`: the raw limits a Python broker lives under, measured on this machine now.

Three figures, each bounded to `duration_s` seconds: frames/s of a bare uvloop echo over
loopback (pipelined, and one round trip at a time); rows/s of batched SQLite inserts in WAL mode
at each synchronous setting; fsyncs/s of a file in the data directory. Broker figures divided by
the matching floor (`floor_ratios`) hold from one noisy machine to the next far better than
msgs/s alone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from mq.bench.echo import echo_rates

ECHO_WINDOW = 1_000  # frames in flight for the pipelined echo
ROW_BYTES = 100
ROWS_PER_TRANSACTION = 1_000
FSYNC_BLOCK_BYTES = 4096
FSYNC_FILE_BYTES = 64 * 1024 * 1024  # the fsync file wraps around at this size


def run_floor(duration_s: float = 2.0, parent_dir: str | None = None) -> dict[str, Any]:
    """Measure every floor figure, `duration_s` seconds each, files in a temp dir under
    `parent_dir` (the system's temp dir by default); returns them as a JSON-able dict."""
    directory = Path(tempfile.mkdtemp(prefix="mq-floor-", dir=parent_dir))
    try:
        pipelined, round_trips = echo_rates(duration_s, (ECHO_WINDOW, 1))
        return {
            "duration_s": duration_s,
            "dir": str(directory.parent),
            "echo_frames_per_s": pipelined,
            "echo_round_trips_per_s": round_trips,
            "sqlite_rows_per_s": {sync: sqlite_rows_per_s(directory, sync, duration_s)
                                  for sync in ("full", "normal")},
            "fsyncs_per_s": fsyncs_per_s(directory, duration_s),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def sqlite_rows_per_s(directory: Path, sync: str, duration_s: float) -> float:
    """Rows/s of `executemany` inserts of 100-byte bodies, 1,000 rows a transaction, WAL mode."""
    conn = sqlite3.connect(directory / f"floor-{sync}.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, "
                     "body BLOB NOT NULL, published_at REAL NOT NULL)")
        rows = [("floor", bytes(ROW_BYTES), time.time())] * ROWS_PER_TRANSACTION
        inserted = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < duration_s:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO messages (queue, body, published_at) VALUES (?, ?, ?)",
                             rows)
            conn.execute("COMMIT")
            inserted += ROWS_PER_TRANSACTION
        return inserted / elapsed
    finally:
        conn.close()


def fsyncs_per_s(directory: Path, duration_s: float) -> float:
    """fsyncs/s of a file in `directory`: write 4 KiB, os.fsync, repeat."""
    fd = os.open(directory / "floor-fsync", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = bytes(FSYNC_BLOCK_BYTES)
    try:
        done = offset = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < duration_s:
            os.pwrite(fd, block, offset)
            os.fsync(fd)
            offset = (offset + FSYNC_BLOCK_BYTES) % FSYNC_FILE_BYTES
            done += 1
        return done / elapsed
    finally:
        os.close(fd)


def render_floor(floor: dict[str, Any]) -> str:
    """The floor as a table a person can read."""
    rows = [
        ("echo, pipelined (1,000 frames in flight)", floor["echo_frames_per_s"], "frames/s"),
        ("echo, one round trip at a time", floor["echo_round_trips_per_s"], "round trips/s"),
        ("SQLite WAL, synchronous=FULL, 1,000 rows/txn", floor["sqlite_rows_per_s"]["full"],
         "rows/s"),
        ("SQLite WAL, synchronous=NORMAL, 1,000 rows/txn", floor["sqlite_rows_per_s"]["normal"],
         "rows/s"),
        ("write 4 KiB + fsync", floor["fsyncs_per_s"], "fsyncs/s"),
    ]
    lines = [f"floor: this machine, {floor['duration_s']:g} s per figure, files in {floor['dir']}",
             ""]
    lines += [f"{name:<48} {value:>12,.0f}  {unit}" for name, value, unit in rows]
    return "\n".join(lines)


def floor_ratios(report: dict[str, Any], floor: dict[str, Any]) -> list[dict[str, Any]]:
    """Each broker throughput of `report` over the floor that bounds it.

    Publishing one at a time is bounded by one fsync per message in full mode and by one round
    trip in normal mode; pipelined publishing by SQLite's batched inserts (and, with one frame
    per message, by the echo); consuming by the echo (one ack frame per message) and SQLite
    (each ack is a write). Where two floors apply, the lower one counts.
    """
    options = report["options"]
    sync = report["broker"]["sync"] or options["sync"]
    sqlite_rows = floor["sqlite_rows_per_s"].get(sync)
    echo = ("echo frames/s", floor["echo_frames_per_s"])
    sqlite = (f"SQLite rows/s ({sync})", sqlite_rows)
    ratios: list[dict[str, Any]] = []
    publish = report.get("publish")
    if publish is not None:
        if options["batch"] == 1 and options["rate"] is None:
            bound = (("fsyncs/s", floor["fsyncs_per_s"]) if sync == "full"
                     else ("echo round trips/s", floor["echo_round_trips_per_s"]))
            candidates = [bound]
        elif options["keys"] or options["batch"] == 1:
            candidates = [echo, sqlite]
        else:
            candidates = [sqlite]
        ratios += _ratio("publish msgs/s", publish["msgs_per_s"], candidates)
    consume = report.get("consume")
    if consume is not None:
        ratios += _ratio("consume msgs/s", consume["msgs_per_s"], [echo, sqlite])
    return ratios


def _ratio(figure: str, value: float, candidates: list[tuple[str, float | None]],
           ) -> list[dict[str, Any]]:
    known = [(n, v) for n, v in candidates if v]
    if not known:
        return []
    name, floor_value = min(known, key=lambda c: c[1])
    return [{"figure": figure, "value": value, "floor": name, "floor_value": floor_value,
             "ratio": value / floor_value}]
