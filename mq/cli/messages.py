"""`mq pub`, `mq get`, `mq peek`, `mq purge`: messages in and out of a queue from a shell.

A body is printed as text mode shows it (protocol.md 3.2: one line, control characters and
bytes that are not UTF-8 escaped); `--json` prints every field of each message instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from itertools import islice
from typing import Any

from mq_client import Client

from mq.cli.common import Subparsers, add_client_parser, add_json, connected, note, print_json
from mq.cli.tables import table
from mq.codec.escape import escape_body

STDIN_BATCH = 1_000  # lines of stdin published with one `mpub`


def add_parsers(sub: Subparsers) -> None:
    p = add_client_parser(sub, "pub", "publish a message, or each line of stdin as one")
    p.add_argument("queue")
    p.add_argument("body", nargs="?", help="the message; without it, one message per line of "
                   "stdin")
    p.add_argument("--key", help="the message's key, for a consumer group")
    p.add_argument("--priority", type=int, help="0..9, higher first")
    p.add_argument("--delay-s", type=float, help="invisible for this many seconds")
    p.add_argument("--ttl-s", type=float, help="never delivered once this old, seconds")
    p.set_defaults(run=pub)

    p = add_client_parser(sub, "get", "lease messages and print their bodies; unless acked, "
                          "they go back to the queue when mq exits")
    p.add_argument("queue")
    p.add_argument("--ack", action="store_true", help="ack them: they are gone for good")
    p.add_argument("--max", type=int, default=1, help="messages at most (default %(default)s)")
    p.add_argument("--wait-s", type=float, default=0.0,
                   help="wait this long for a message to arrive (default %(default)s)")
    p.add_argument("--lease-s", type=float, help="lease for this long (default: the queue's)")
    add_json(p)
    p.set_defaults(run=get)

    p = add_client_parser(sub, "peek", "show the next ready messages without leasing them")
    p.add_argument("queue")
    p.add_argument("--count", type=int, default=10, help="messages at most (default %(default)s)")
    add_json(p)
    p.set_defaults(run=peek)

    p = add_client_parser(sub, "purge", "remove every message of a queue, leased ones too")
    p.add_argument("queue")
    p.set_defaults(run=purge)


def _stdin_batches() -> Iterator[list[bytes]]:
    lines = (line.rstrip(b"\n").removesuffix(b"\r") for line in sys.stdin.buffer)
    while batch := list(islice(lines, STDIN_BATCH)):
        yield batch


def pub(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"priority": args.priority, "delay_s": args.delay_s,
                               "ttl_s": args.ttl_s}
    batches = [[args.body.encode()]] if args.body is not None else _stdin_batches()
    with connected(args.url) as mq:
        for bodies in batches:
            for msg_id in _publish(mq, args.queue, bodies, args.key, options):
                print(msg_id)
    return 0


def _publish(mq: Client, queue: str, bodies: list[bytes], key: str | None,
             options: dict[str, Any]) -> list[int]:
    if key is None:
        return mq.publish_many(queue, bodies, **options)
    return [mq.publish(queue, body, key, **options) for body in bodies]


def get(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        msgs = mq.get(args.queue, lease_s=args.lease_s, wait_s=args.wait_s or None,
                      max=args.max)
        if args.ack and msgs:
            mq.ack_many(msgs)
    for m in msgs:
        if args.json:
            print_json({**m._asdict(), "acked": args.ack})
        else:
            print(escape_body(m.body))
    if msgs and not args.ack and sys.stderr.isatty():
        note("not acked: back in the queue now that mq has left (--ack takes them)")
    return 0


def peek(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        msgs = mq.peek(args.queue, args.count)
    if args.json:
        for m in msgs:
            print_json(dataclasses.asdict(m))
        return 0
    if not msgs:
        note(f"no ready message in {args.queue}")
        return 0
    errors = any(m.last_error for m in msgs)
    headers = ["msg_id", "deliveries", "priority", "key", *(["last_error"] * errors), "body"]
    rows = [[str(m.msg_id), str(m.deliveries), str(m.priority), m.key or "-",
             *([m.last_error or "-"] * errors), escape_body(m.body)] for m in msgs]
    print("\n".join(table(headers, rows, text=tuple(range(3, len(headers))))))
    return 0


def purge(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        purged = mq.purge(args.queue)
    print(f"purged {purged} messages from {args.queue}")
    return 0

