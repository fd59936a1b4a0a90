"""The figures of a run, as a JSON-able dict (`build_report`) and as a table (`render`).

Units are in the names: msgs_per_s, mb_per_s (10^6 bytes of bodies per second), seconds,
latency in microseconds, cpu_s (user + system CPU seconds), rss in MB (10^6 bytes).
"""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

from mq.bench.floor import floor_ratios, render_floor
from mq.bench.histogram import Histogram
from mq.bench.options import BenchOptions
from mq.bench.progress import Sample, tenth_rates
from mq.bench.workers import WorkerResult

REPORT_VERSION = 1
MB = 1e6
MIN_TENTHS_S = 2.0  # a side must last this long for its first and last tenth rates


def _merged(results: list[WorkerResult], name: str) -> Histogram:
    merged = Histogram()
    for result in results:
        merged.merge(getattr(result, name))
    return merged


def _span_s(results: list[WorkerResult]) -> float:
    """From the first worker's start to the last one's last confirmation or ack, in seconds."""
    active = [r for r in results if r.last_ns > r.started_ns > 0]
    if not active:
        return 0.0
    return (max(r.last_ns for r in active) - min(r.started_ns for r in active)) / 1e9


def _side(results: list[WorkerResult], messages: int, size: int, latency: Histogram | None,
          timeline: list[Sample], column: int) -> dict[str, Any]:
    seconds = _span_s(results)
    rate = messages / seconds if seconds else 0.0
    # Shorter runs have too few samples for a tenth to mean anything.
    tenths = tenth_rates(timeline, column, messages) if seconds >= MIN_TENTHS_S else None
    return {"messages": messages, "seconds": seconds, "msgs_per_s": rate,
            "mb_per_s": rate * size / MB,
            "first_tenth_msgs_per_s": tenths[0] if tenths else None,
            "last_tenth_msgs_per_s": tenths[1] if tenths else None,
            "latency_us": latency.summary_us() if latency is not None else None}


def _counts(opts: BenchOptions, prefill: dict[str, Any] | None, producers: list[WorkerResult],
            consumers: list[WorkerResult], failures: list[str]) -> dict[str, Any]:
    sent = sum(r.sent for r in producers) if prefill is None else prefill["messages"]
    confirmed = sum(r.confirmed for r in producers) if prefill is None else prefill["messages"]
    received = sum(r.received for r in consumers)
    unique = len({i for r in consumers for i in r.msg_ids})
    return {
        "expected": opts.count, "sent": sent, "confirmed": confirmed, "received": received,
        "acked": sum(r.acked for r in consumers), "unique": unique,
        "duplicates": received - unique,
        "redeliveries": sum(r.redeliveries for r in consumers),
        "not_received": max(0, confirmed - unique) if opts.has_consumers else None,
        "errors": sum(r.errors for r in producers + consumers) + len(failures),
        "worker_failures": len(failures),
    }


def build_report(opts: BenchOptions, broker: dict[str, Any], prefill: dict[str, Any] | None,
                 results: list[WorkerResult], failures: list[str],
                 floor: dict[str, Any] | None, timeline: list[Sample],
                 idle: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a run measured, for `render`, for `--json` and for `mq bench compare`.

    `idle`: with --idle-connections, how many were open and the broker's RSS before and after
    opening them (MB), the difference and its share per connection (kB).
    """
    producers = [r for r in results if r.role == "producer"]
    consumers = [r for r in results if r.role == "consumer"]
    counts = _counts(opts, prefill, producers, consumers, failures)
    moved = max(counts["confirmed"] if opts.has_producers else 0, counts["received"])
    window_s = _span_s(results)
    cpu_s = broker.get("cpu_s")
    broker = {**broker,
              "cpu_us_per_msg": cpu_s * 1e6 / moved if cpu_s is not None and moved else None,
              "cpu_cores": cpu_s / window_s if cpu_s is not None and window_s else None}
    lag = _merged(producers, "send_lag")
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "options": opts.to_dict(),
        "broker": broker,
        "idle": idle,
        "prefill": prefill,
        "publish": (_side(producers, counts["confirmed"], opts.size,
                          _merged(producers, "confirm"), timeline, 1)
                    if opts.has_producers else None),
        "consume": (_side(consumers, counts["received"], opts.size,
                          _merged(consumers, "deliver") if opts.scenario == "e2e" else None,
                          timeline, 2)
                    if opts.has_consumers else None),
        "counts": counts,
        "harness": {"workers": len(results), "processes": len(results) > 1,
                    "cpu_s": sum(r.cpu_s for r in results),
                    "send_lag_us": lag.summary_us() if lag.count else None},
        "errors": [s for r in results for s in r.error_samples] + failures,
        "floor": floor,
        "ratios": None,
        "timeline": [list(sample) for sample in timeline],
    }
    if floor is not None:
        report["ratios"] = floor_ratios(report, floor)
    return report


# -- rendering -------------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _headline(report: dict[str, Any]) -> list[str]:
    o = report["options"]
    load = []
    if report["publish"] is not None:
        load.append(_plural(o["producers"], "producer"))
    if report["consume"] is not None:
        load.append(_plural(o["consumers"], "consumer"))
    how = []
    if report["publish"] is not None:
        how.append(f"batch {o['batch']}" + (f" ({o['inflight']} in flight)"
                                            if o["batch"] > 1 and not o["keys"] else ""))
    if report["consume"] is not None:
        receive = ("pushed (sub)" if o.get("consume", "get") == "sub" else "polled (get)")
        how.append(f"{receive}, prefetch {o['prefetch']}, "
                   + ("one ack per message" if o.get("ack") == "each" else "batch acks"))
    if o["keys"]:
        how.append(f"{o['keys']} keys")
    if o["rate"]:
        how.append(f"rate {o['rate']:,.0f} msgs/s")
    if o["duration_s"]:
        how.append(f"duration {o['duration_s']:g} s")
    b = report["broker"]
    where = "started by bench" if b["started_by_bench"] else "given by --url"
    pid = f", pid {b['pid']}" if b["pid"] else ""
    queues = report.get("queues")
    queue = (f"queue {o['queue']}" if not queues or len(queues) == 1 else
             f"{len(queues)} queues {queues[0]} .. {queues[-1]} over "
             f"{_plural(len(report['brokers']), 'broker')}")
    return [
        f"mq bench {o['scenario']}: {' + '.join(load)}, {o['count']:,} msgs x {o['size']:,} B, "
        + ", ".join(how),
        f"broker {b['url']} ({where}{pid}, sync {b['sync']}), {queue}",
    ]


def _throughput(report: dict[str, Any]) -> list[str]:
    lines = [f"{'':<18}{'messages':>10}{'seconds':>10}{'msgs/s':>12}{'MB/s':>9}"
             f"{'first 10%':>12}{'last 10%':>12}"]
    for name in ("publish", "consume"):
        side = report[name]
        if side is None:
            continue
        tenths = "".join(f"{side[k]:>12,.0f}" if side[k] is not None else f"{'-':>12}"
                         for k in ("first_tenth_msgs_per_s", "last_tenth_msgs_per_s"))
        lines.append(f"{name:<18}{side['messages']:>10,}{side['seconds']:>10.2f}"
                     f"{side['msgs_per_s']:>12,.0f}{side['mb_per_s']:>9.2f}{tenths}")
    return lines


def _latency(report: dict[str, Any]) -> list[str]:
    rows = []
    if report["publish"] is not None:
        rows.append(("publish->confirm", report["publish"]["latency_us"]))
    if report["consume"] is not None and report["consume"]["latency_us"] is not None:
        rows.append(("publish->deliver", report["consume"]["latency_us"]))
    if report["harness"]["send_lag_us"] is not None:
        rows.append(("scheduled->sent", report["harness"]["send_lag_us"]))
    if not rows:
        return []
    columns = ("mean", "p50", "p90", "p99", "p99.9", "max")
    lines = [f"{'latency (us)':<18}{'count':>10}" + "".join(f"{c:>11}" for c in columns)]
    for name, s in rows:
        lines.append(f"{name:<18}{s['count']:>10,}" + "".join(f"{s[c]:>11,.0f}" for c in columns))
    return lines


def _resources(report: dict[str, Any]) -> list[str]:
    b, h, c = report["broker"], report["harness"], report["counts"]
    if b["cpu_s"] is None:
        broker = "broker    cpu and rss unknown (give --broker-pid with --url)"
    else:
        broker = (f"broker    cpu {b['cpu_s']:.2f} s ({(b['cpu_cores'] or 0) * 100:.0f}% of a core"
                  f", {b['cpu_us_per_msg'] or 0:.1f} us/msg)  rss {b['rss_start_mb']:.1f} MB, "
                  f"peak {b['rss_peak_mb']:.1f} MB")
    if b["commits"]:
        broker += (f"  {b['commits']:,} commits ({(b['committed_changes'] or 0) / b['commits']:.1f}"
                   " changes each)")
    idle = report.get("idle")
    if idle is not None:
        if idle["rss_delta_mb"] is None:
            broker += f"\nidle      {idle['connections']:,} connections open (rss unknown)"
        else:
            broker += (f"\nidle      {idle['connections']:,} connections: rss "
                       f"{idle['rss_before_mb']:.1f} -> {idle['rss_after_mb']:.1f} MB "
                       f"(+{idle['rss_delta_mb']:.1f} MB, {idle['kb_per_connection']:.1f} kB each)")
    kind = "processes" if h["processes"] else "in-process"
    lines = [broker, f"harness   cpu {h['cpu_s']:.2f} s, {_plural(h['workers'], 'worker')} "
                     f"({kind})"]
    fields = ["sent", "confirmed"]
    if report["consume"] is not None:
        fields += ["received", "unique", "duplicates", "redeliveries", "not_received"]
    fields.append("errors")
    lines.append("counts    " + "  ".join(f"{f.replace('_', ' ')} {c[f]:,}" for f in fields
                                          if c[f] is not None))
    return lines


def _per_broker(report: dict[str, Any]) -> list[str]:
    """One line per broker: what its queues moved, its commits, its CPU per message."""
    brokers = report.get("brokers")
    if not brokers:
        return []

    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'per broker':<22}{'node':>6}{'queues':>7}{'published':>11}{'acked':>10}"
             f"{'commits':>9}{'changes':>9}{'cpu s':>8}{'us/msg':>8}"]
    for r in brokers:
        lines.append(f"{r['addr']:<22}{r['node'] or '-':>6}{r['queues']:>7}{r['published']:>11,}"
                     f"{r['acked']:>10,}{num(r['commits'], ','):>9}"
                     f"{num(r['committed_changes'], ','):>9}{num(r['cpu_s'], '.2f'):>8}"
                     f"{num(r['cpu_us_per_msg'], '.1f'):>8}")
    if all(r["cpu_s"] is None for r in brokers):
        lines.append("(cpu per broker: give --broker-pid PID,PID,... of the brokers)")
    return lines


def _ratios(report: dict[str, Any]) -> list[str]:
    lines = [f"{'vs floor':<18}{'broker':>12}{'floor':>12}  {'':<24}{'ratio':>6}"]
    for r in report["ratios"]:
        lines.append(f"{r['figure']:<18}{r['value']:>12,.0f}{r['floor_value']:>12,.0f}  "
                     f"{r['floor']:<24}{r['ratio']:>6.2f}")
    return lines


def render(report: dict[str, Any]) -> str:
    """The report as tables a person can read."""
    sections = [_headline(report), _throughput(report), _latency(report), _resources(report),
                _per_broker(report)]
    if report["errors"]:
        shown = report["errors"][:10]
        sections.append(["errors:", *(f"  {e.rstrip()}" for e in shown)])
    if report.get("broker_log_tail"):
        sections.append(["broker log, last lines:",
                         *(f"  {line.rstrip()}" for line in report["broker_log_tail"])])
    if report["floor"] is not None:
        sections.append([render_floor(report["floor"])])
        sections.append(_ratios(report))
    return "\n\n".join("\n".join(s) for s in sections if s)
