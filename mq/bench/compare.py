"""`mq bench compare A.json B.json`: two runs side by side, with the ratio B/A of each figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LATENCY_COLUMNS = ("p50", "p90", "p99", "p99.9", "max")

# (label, path into the report); a figure missing from both runs is left out.
FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("publish msgs/s", ("publish", "msgs_per_s")),
    ("publish MB/s", ("publish", "mb_per_s")),
    ("publish first 10% msgs/s", ("publish", "first_tenth_msgs_per_s")),
    ("publish last 10% msgs/s", ("publish", "last_tenth_msgs_per_s")),
    ("consume msgs/s", ("consume", "msgs_per_s")),
    ("consume MB/s", ("consume", "mb_per_s")),
    ("consume first 10% msgs/s", ("consume", "first_tenth_msgs_per_s")),
    ("consume last 10% msgs/s", ("consume", "last_tenth_msgs_per_s")),
    *((f"publish->confirm {c} us", ("publish", "latency_us", c)) for c in LATENCY_COLUMNS),
    *((f"publish->deliver {c} us", ("consume", "latency_us", c)) for c in LATENCY_COLUMNS),
    ("broker cpu s", ("broker", "cpu_s")),
    ("broker cpu us/msg", ("broker", "cpu_us_per_msg")),
    ("broker peak rss MB", ("broker", "rss_peak_mb")),
    ("broker commits", ("broker", "commits")),
    ("idle connections", ("idle", "connections")),
    ("idle rss delta MB", ("idle", "rss_delta_mb")),
    ("idle kB/connection", ("idle", "kb_per_connection")),
    ("harness cpu s", ("harness", "cpu_s")),
    ("errors", ("counts", "errors")),
    ("duplicates", ("counts", "duplicates")),
    ("redeliveries", ("counts", "redeliveries")),
    ("floor echo frames/s", ("floor", "echo_frames_per_s")),
    ("floor echo round trips/s", ("floor", "echo_round_trips_per_s")),
    ("floor SQLite rows/s full", ("floor", "sqlite_rows_per_s", "full")),
    ("floor SQLite rows/s normal", ("floor", "sqlite_rows_per_s", "normal")),
    ("floor fsyncs/s", ("floor", "fsyncs_per_s")),
)
# Options that are expected to differ between any two runs, so not worth a line.
_INCIDENTAL_OPTIONS = ("queue", "json_path", "url", "broker_pid", "progress")


def load(path: str | Path) -> dict[str, Any]:
    """A report written by `mq bench --json`; raises ValueError if it is not one."""
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    if not isinstance(report, dict) or "options" not in report or "counts" not in report:
        raise ValueError(f"{path} is not a report of mq bench --json")
    return report


def _lookup(report: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = report
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 and value != int(value) else f"{value:,.0f}"


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, float | None, float | None,
                                                                   float | None]]:
    """(label, A, B, B/A) for every figure either run has; B/A is None where it means nothing."""
    rows = []
    for label, path in FIGURES:
        va, vb = _lookup(a, path), _lookup(b, path)
        if va is None and vb is None:
            continue
        ratio = vb / va if va and vb is not None else None
        rows.append((label, va, vb, ratio))
    return rows


def option_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The options that differ between the runs, as `name A -> B`."""
    oa, ob = a.get("options", {}), b.get("options", {})
    return [f"{k} {oa.get(k)} -> {ob.get(k)}" for k in sorted(set(oa) | set(ob))
            if k not in _INCIDENTAL_OPTIONS and oa.get(k) != ob.get(k)]


def render_compare(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> str:
    lines = []
    for tag, name, r in (("A", name_a, a), ("B", name_b, b)):
        broker = r.get("broker", {})
        lines.append(f"{tag}  {name}  ({r['options'].get('scenario')}, sync {broker.get('sync')}, "
                     f"{r.get('when', '?')})")
    changes = option_changes(a, b)
    lines.append("options: " + ("; ".join(changes) if changes else "the same"))
    lines.append("")
    lines.append(f"{'figure':<28}{'A':>14}{'B':>14}{'B/A':>8}")
    for label, va, vb, ratio in compare(a, b):
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        lines.append(f"{label:<28}{_fmt(va):>14}{_fmt(vb):>14}{shown:>8}")
    return "\n".join(lines)
