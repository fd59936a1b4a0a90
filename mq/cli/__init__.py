"""The `mq` command: `mq serve` runs a broker; `mq pub`, `get`, `peek`, `purge`, `queues`,
`stats`, `explain`, `history` and `tail` talk to one through the SDK, like any client; `mq
user` edits a users file; `mq cluster` reads and drains a cluster; `mq bench` load-tests
one. One module per group of subcommands, each adding its own parsers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mq import __version__
from mq.bench.cli import add_parser as add_bench_parser
from mq.cli import cluster, messages, observe, serve, users
from mq.cli.common import CliError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mq", description="mq: a durable message broker")
    p.add_argument("--version", action="version", version=f"mq {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parsers(sub)
    messages.add_parsers(sub)
    observe.add_parsers(sub)
    users.add_parsers(sub)
    cluster.add_parsers(sub)
    add_bench_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "bench":
        from mq.bench.cli import run as run_bench
        return run_bench(args)
    try:
        code: int = args.run(args)
    except CliError as e:
        print(f"mq {args.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `mq tail | head`: the reader left
        sys.stderr.close()
        return 0
    return code
