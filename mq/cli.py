"""The `mq` command: `mq serve` runs a broker, `mq stats` shows what one is doing, `mq bench`
load-tests one."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from mq.bench.cli import add_parser as _bench_parser
from mq.server.config import DEFAULT_PORT, Config


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Config()
    p = sub.add_parser("serve", help="run a broker")
    p.add_argument("--host", default=d.host, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=d.port, help="TCP port, 0 for any free one "
                   "(default %(default)s)")
    p.add_argument("--db", dest="db_path", default=d.db_path,
                   help="SQLite file of the log (default %(default)s)")
    p.add_argument("--sync", choices=("full", "normal"), default=d.sync,
                   help="full: a confirmation survives power loss; normal: it survives a killed "
                   "broker only (default %(default)s)")
    p.add_argument("--lease-s", type=float, default=d.lease_s,
                   help="default visibility timeout of a queue, seconds (default %(default)s)")
    p.add_argument("--retention-s", type=float, default=d.retention_s,
                   help="default retention of a queue, seconds (default %(default)s)")
    p.add_argument("--max-frame-bytes", type=int, default=d.max_frame_bytes,
                   help="largest binary frame accepted (default %(default)s)")
    p.add_argument("--max-line-bytes", type=int, default=d.max_line_bytes,
                   help="longest text line accepted (default %(default)s)")
    p.add_argument("--heartbeat-s", type=float, default=d.heartbeat_s,
                   help="default heartbeat interval of consumer sessions (default %(default)s)")
    p.add_argument("--heartbeat-misses", type=int, default=d.heartbeat_misses,
                   help="missed heartbeats before a session is dead (default %(default)s)")
    p.add_argument("--grace-s", type=float, default=d.grace_s,
                   help="how long a disconnected session waits for its consumer to reconnect "
                   "(default %(default)s)")
    p.add_argument("--poison-deaths", type=int, default=d.poison_deaths,
                   help="consumer deaths with a message before it is set aside "
                   "(default %(default)s)")
    p.add_argument("--prefetch", type=int, default=d.default_prefetch,
                   help="default credit of a group member (default %(default)s)")
    p.add_argument("--keep-history-s", type=float, default=d.keep_history_s,
                   help="how long acked messages stay in the log for HISTORY before compaction "
                   "(default %(default)s)")
    p.add_argument("--max-body-memory-bytes", type=int, default=d.max_body_memory_bytes,
                   help="bytes of queued bodies kept in memory; beyond, bodies are read back "
                   "from the log when delivered (0: no limit; default %(default)s)")


def _stats_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stats", help="print a running broker's queues as a table")
    p.add_argument("--url", default=f"mq://127.0.0.1:{DEFAULT_PORT}")
    p.add_argument("queue", nargs="?", help="one queue only")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mq", description="mq: a durable message broker")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _stats_parser(sub)
    _bench_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "stats":
        from mq.stats_view import print_stats
        return print_stats(args.url, args.queue)
    if args.command == "bench":
        from mq.bench.cli import run as run_bench
        return run_bench(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(args: argparse.Namespace) -> int:
    from mq.server.run import serve
    try:
        config = Config(host=args.host, port=args.port, db_path=args.db_path, sync=args.sync,
                        lease_s=args.lease_s, retention_s=args.retention_s,
                        max_frame_bytes=args.max_frame_bytes, max_line_bytes=args.max_line_bytes,
                        heartbeat_s=args.heartbeat_s, heartbeat_misses=args.heartbeat_misses,
                        grace_s=args.grace_s, poison_deaths=args.poison_deaths,
                        default_prefetch=args.prefetch, keep_history_s=args.keep_history_s,
                        max_body_memory_bytes=args.max_body_memory_bytes)
    except ValueError as e:
        print(f"mq serve: {e}", file=sys.stderr)
        return 2
    try:
        serve(config)
    except sqlite3.DatabaseError as e:
        print(f"mq serve: cannot use {config.db_path} as the log: {e}. Point --db at an mq log, "
              "or at a path where a new one may be created.", file=sys.stderr)
        return 1
    return 0
