"""`mq bench`, `mq bench floor` and `mq bench compare`: flags, and what each command runs.

Light on imports on purpose: `mq` builds this parser for every command, so the load machinery is
imported only when a bench actually runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mq.bench.options import (
    ACK_MODES,
    CONSUME_MODES,
    MAX_IDLE_CONNECTIONS,
    SCENARIOS,
    SYNC_MODES,
    BenchOptions,
)

_D = BenchOptions(queue="default")  # the defaults, for the help texts

_DESCRIPTION = """\
Load-test a broker. With no arguments: start a broker on a temporary database, run the e2e
scenario (producers and consumers at once), print the figures, stop the broker. With --url,
load a running broker instead. `mq bench floor` measures this machine's raw limits;
`mq bench compare A.json B.json` puts two --json reports side by side.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench` (with its `floor` and `compare` subcommands) to the `mq` subcommands."""
    p = sub.add_parser("bench", help="load-test a broker and report its speed",
                       description=_DESCRIPTION)
    _add_load_flags(p)
    _add_broker_flags(p)
    p.add_argument("--json", dest="json_path", metavar="FILE",
                   help="also write the figures as JSON to FILE")
    p.add_argument("--floor", action="store_true",
                   help="also measure the floor and show each figure as a ratio to it")
    p.add_argument("--floor-duration", dest="floor_duration_s", type=float,
                   default=_D.floor_duration_s, metavar="S",
                   help="seconds per floor figure (default %(default)s)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no live progress line on stderr")
    commands = p.add_subparsers(dest="bench_command", metavar="{floor,compare,hostile}")
    floor = commands.add_parser("floor", help="measure this machine's raw limits")
    floor.add_argument("--duration", dest="floor_duration_s", type=float,
                       default=_D.floor_duration_s, metavar="S",
                       help="seconds per figure (default %(default)s)")
    floor.add_argument("--dir", dest="data_dir", metavar="PATH",
                       help="where the SQLite and fsync files go (default: the temp dir)")
    floor.add_argument("--json", dest="json_path", metavar="FILE", help="also write JSON to FILE")
    hostile = commands.add_parser("hostile", help="clients that try to stall or bloat the broker: "
                                  "PING latency and broker RSS while each one runs")
    hostile.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                         help="pipeline, sub, monitor, peeks, frames, waiters (default: all)")
    hostile.add_argument("--attack-s", type=float, default=5.0, metavar="S",
                         help="how long each hostile client runs (default %(default)s)")
    compare = commands.add_parser("compare", help="two --json reports side by side")
    compare.add_argument("a", metavar="A.json")
    compare.add_argument("b", metavar="B.json")


def _add_load_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", choices=SCENARIOS, default=_D.scenario,
                   help="publish only, consume only (prefilled), or both at once "
                   "(default %(default)s)")
    p.add_argument("--producers", type=int, default=_D.producers, metavar="N",
                   help="producer connections, one process each when more than one worker "
                   "(default %(default)s)")
    p.add_argument("--consumers", type=int, default=_D.consumers, metavar="N",
                   help="consumer connections (default %(default)s)")
    p.add_argument("--size", type=int, default=_D.size, metavar="BYTES",
                   help="body size (default %(default)s)")
    p.add_argument("--count", type=int, default=_D.count, metavar="N",
                   help="messages in all (default %(default)s)")
    p.add_argument("--duration", dest="duration_s", type=float, metavar="S",
                   help="stop publishing (or consuming) after S seconds")
    p.add_argument("--batch", type=int, metavar="N",
                   help="messages per mpub, or with --keys pubs in flight; 1 = one at a time "
                   f"(default {_D.batch}, or 1 with --rate)")
    p.add_argument("--inflight", type=int, default=_D.inflight, metavar="N",
                   help="mpub requests in flight per producer when batch > 1 "
                   "(default %(default)s)")
    p.add_argument("--consume", choices=CONSUME_MODES, default=_D.consume,
                   help="how consumers receive: sub = the broker pushes messages (SUB, up to "
                   "--prefetch unacked), so publish->deliver leaves out the consumer's own ack "
                   "round trips; get = one get at a time, acked while the next is in flight "
                   "(default %(default)s)")
    p.add_argument("--prefetch", type=int, default=_D.prefetch, metavar="N",
                   help="sub: unacked messages the broker may push (1..10,000); get: messages "
                   "per get (1..1,000) (default %(default)s)")
    p.add_argument("--ack", choices=ACK_MODES, default=_D.ack,
                   help="how consumers ack what they received at once: one batch ack request, "
                   "or one ack request per message, all in flight at once (default %(default)s)")
    p.add_argument("--keys", type=int, default=_D.keys, metavar="N",
                   help="publish with keys cycling over N keys; 0 = none (default %(default)s)")
    p.add_argument("--rate", type=float, metavar="R",
                   help="open loop: R msgs/s in all, latency from the scheduled send times")
    p.add_argument("--queue", metavar="NAME", help="queue to use (default: a fresh bench-* one)")
    p.add_argument("--queues", type=int, default=_D.queues, metavar="N",
                   help="spread producers and consumers over N queues, NAME-0 .. on distinct "
                   "slots spread over a cluster's brokers, and report each broker's figures "
                   "(default %(default)s)")
    p.add_argument("--timeout", dest="timeout_s", type=float, default=_D.timeout_s, metavar="S",
                   help="hard limit on a run, seconds (default %(default)s)")


def _add_broker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sync", choices=SYNC_MODES, default=_D.sync,
                   help="durability of the broker bench starts (default %(default)s)")
    p.add_argument("--dir", dest="data_dir", metavar="PATH",
                   help="where the temporary database goes (default: the temp dir)")
    p.add_argument("--url", metavar="mq://HOST:PORT",
                   help="load a running broker instead of starting one")
    p.add_argument("--broker-pid", type=_pids, metavar="PID[,PID...]",
                   help="with --url: the broker's pid, for its CPU and RSS figures; a cluster's "
                   "brokers' pids, each matched to its broker by its listening port")
    p.add_argument("--warm", type=int, default=_D.warm, metavar="N",
                   help="before the run, pass N messages through the queue (publish, lease, "
                   "ack in batches) so the run measures a queue with a past (default "
                   "%(default)s)")
    p.add_argument("--idle-connections", type=int, default=_D.idle_connections, metavar="N",
                   help="before the run, open N idle connections (one ping each, then silent; "
                   f"0..{MAX_IDLE_CONNECTIONS:,}, 127.0.0.1 only), report the broker's RSS "
                   "before and after, and close them at the end (default %(default)s)")


def _pids(text: str) -> tuple[int, ...]:
    try:
        pids = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PID or PID,PID,..., got {text!r}") from None
    if any(p <= 0 for p in pids):
        raise argparse.ArgumentTypeError(f"pids are above 0, got {text!r}")
    return pids


def _options(args: argparse.Namespace) -> BenchOptions:
    names = [f for f in BenchOptions.__dataclass_fields__ if hasattr(args, f)]
    values: dict[str, Any] = {n: getattr(args, n) for n in names}
    pids: tuple[int, ...] = values.pop("broker_pid", None) or ()
    if len(pids) == 1:
        values["broker_pid"] = pids[0]  # one broker: the figures as they always were
    elif pids:
        values["broker_pids"] = pids
    if values.get("queue") is None:
        values.pop("queue", None)  # a fresh queue per run
    if values.get("batch") is None:
        # At a fixed rate, batching only adds latency: each message goes out when it is due.
        values["batch"] = 1 if values.get("rate") else _D.batch
    return BenchOptions(**values)


def run(args: argparse.Namespace) -> int:
    """Run the bench command `args` describes; returns the exit code.

    0: done without errors; 1: the run had errors (or a worker failed); 2: bad arguments;
    130: interrupted.
    """
    try:
        if args.bench_command == "compare":
            return _compare(args.a, args.b)
        if args.bench_command == "hostile":
            return _hostile(args.scenarios, args.attack_s)
        if args.bench_command == "floor":
            return _floor(args.floor_duration_s, args.data_dir, args.json_path)
        try:
            opts = _options(args)
        except ValueError as e:
            print(f"mq bench: {e}", file=sys.stderr)
            return 2
        return _bench(opts)
    except KeyboardInterrupt:
        print("\nmq bench: interrupted", file=sys.stderr)
        return 130


def _bench(opts: BenchOptions) -> int:
    from mq_client.errors import MQError

    from mq.bench.report import render
    from mq.bench.runner import run_bench

    try:
        report = run_bench(opts)
    except (MQError, RuntimeError, OSError) as e:  # broker unreachable, slow or not started
        print(f"mq bench: {e or 'the broker did not answer in time'}", file=sys.stderr)
        return 1
    print(render(report))
    _write_json(opts.json_path, report)
    return 1 if report["counts"]["errors"] else 0


def _floor(duration_s: float, data_dir: str | None, json_path: str | None) -> int:
    from mq.bench.floor import render_floor, run_floor

    if duration_s <= 0:
        print("mq bench floor: --duration must be above 0 seconds", file=sys.stderr)
        return 2
    floor = run_floor(duration_s, data_dir)
    print(render_floor(floor))
    _write_json(json_path, floor)
    return 0


def _hostile(names: list[str], attack_s: float) -> int:
    from mq.bench.hostile import SCENARIOS, render, run_scenario

    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not 0 < attack_s <= 600:
        print(f"mq bench hostile: scenarios are {', '.join(SCENARIOS)}; --attack-s is 0..600",
              file=sys.stderr)
        return 2
    rows = []
    for name in names or list(SCENARIOS):
        print(f"{name}: {SCENARIOS[name][2]} ...", file=sys.stderr)
        rows.append(run_scenario(name, attack_s))
    print(render(rows))
    return 0 if all(r["broker_alive"] for r in rows) else 1


def _compare(path_a: str, path_b: str) -> int:
    from mq.bench.compare import load, render_compare

    try:
        a, b = load(path_a), load(path_b)
    except (OSError, ValueError) as e:
        print(f"mq bench compare: {e}", file=sys.stderr)
        return 2
    print(render_compare(a, b, path_a, path_b))
    return 0


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
