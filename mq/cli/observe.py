"""`mq queues`, `mq stats`, `mq explain`, `mq history`, `mq tail`: what a broker holds and
what happens to it, from a shell."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from mq_client import AsyncClient
from mq_client.errors import MQError

from mq.cli.common import (
    TIMEOUT_S,
    CliError,
    Subparsers,
    add_client_parser,
    add_json,
    check_url,
    connected,
    failure,
    print_json,
)
from mq.cli.tables import count, table
from mq.codec.text_lines import clock_text, field_text, value_text

# (header, STATS field) of the queue table, narrow enough for 80 columns
QUEUE_COLUMNS = [("ready", "ready"), ("delayed", "delayed"), ("leased", "leased"),
                 ("dead", "dead_lettered"), ("published", "published"), ("acked", "acked"),
                 ("oldest_s", "oldest_ready_s")]
MEMBER_COLUMNS = [("leases", "leases"), ("prefetch", "prefetch"), ("keys", "keys"),
                  ("share", "ring_share"), ("heartbeat_s", "last_heartbeat_s_ago")]
EVENT_FIELDS = ("at", "queue", "msg_id", "event")  # the first words of an event line


def add_parsers(sub: Subparsers) -> None:
    p = add_client_parser(sub, "queues", "list the queues, one name a line")
    add_json(p)
    p.set_defaults(run=queues)

    p = add_client_parser(sub, "stats", "show a broker's queues and consumer groups as a table")
    p.add_argument("queue", nargs="?", help="one queue only")
    add_json(p)
    p.set_defaults(run=stats)

    p = add_client_parser(sub, "explain", "say why a message is (not) being delivered")
    p.add_argument("msg_id", type=int)
    add_json(p)
    p.set_defaults(run=explain)

    p = add_client_parser(sub, "history", "show a message's life, from the broker's log")
    p.add_argument("msg_id", type=int)
    add_json(p)
    p.set_defaults(run=history)

    p = add_client_parser(sub, "tail", "print every event of a queue as it happens (MONITOR)")
    p.add_argument("queue", nargs="?", help="one queue only (default: every queue)")
    p.add_argument("--count", type=int, help="stop after this many events")
    add_json(p)
    p.set_defaults(run=tail)


def queues(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        names = mq.queues()
    for name in names:
        print_json(name) if args.json else print(name)
    return 0


def stats(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        figures = mq.stats(args.queue)
    if args.json:
        print_json(figures)
    else:
        print(render_stats(figures))
    return 0


def _cell(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value_text("", value)
    return count(value) if isinstance(value, int) else f"{value:.1f}"


def render_stats(figures: Mapping[str, Any]) -> str:
    """The server line, a row per queue and a row per group member, in 80 columns."""
    server = figures["server"]
    header = (f"mq {server['version']}  up {server['uptime_s']:.0f}s  "
              f"connections {server['connections']}  sync {server['sync']}  "
              f"commits {count(server['commits'])}  waiting GETs {server['waiting_gets']}")
    found = figures["queues"]
    rows = [[name, *(_cell(q.get(field)) for _, field in QUEUE_COLUMNS)]
            for name, q in sorted(found.items())]
    body = table(["queue", *(h for h, _ in QUEUE_COLUMNS)], rows) if rows else ["(no queues)"]
    members = [[f"{name}/{q['group']['group']}", consumer,
                *(_cell(m.get(field)) for _, field in MEMBER_COLUMNS)]
               for name, q in sorted(found.items()) if q.get("group")
               for consumer, m in q["group"]["members"].items()]
    groups = table(["queue/group", "consumer", *(h for h, _ in MEMBER_COLUMNS)],
                   members, text=(0, 1)) if members else []
    return "\n".join([header, "", *body, *(["", *groups] if groups else [])])


def explain(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        answer = mq.explain(args.msg_id)
    if args.json:
        print_json(answer)
        return 0
    why = answer["why"]  # a sentence that starts with the state ("ready: ...") or says it
    print(f"{args.msg_id}: {why}" if why.startswith(answer["state"])
          else f"{args.msg_id}: {answer['state']}: {why}")
    for name, value in answer.items():
        if name not in ("state", "why", "msg_id") and value is not None:
            print(f"  {name}: {value_text(name, value)}")
    return 0


def history(args: argparse.Namespace) -> int:
    with connected(args.url) as mq:
        events = mq.history(args.msg_id)
    if not events:
        raise CliError(f"the log holds nothing of message {args.msg_id} (never published, "
                       "or compacted since)")
    for e in events:
        print_json(e) if args.json else print(event_line({"msg_id": args.msg_id, **e}))
    return 0


def event_line(e: Mapping[str, Any]) -> str:
    """`<UTC time> <queue> <msg_id> <event> name=value ...`, as MONITOR prints it."""
    extra = [f"{k}={field_text(k, v)}" for k, v in e.items()
             if k not in EVENT_FIELDS and v is not None]
    return " ".join([clock_text(e["at"]), e.get("queue") or "-", str(e.get("msg_id", "-")),
                     e["event"], *extra])


def tail(args: argparse.Namespace) -> int:
    check_url(args.url)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(args))
    return 0


async def _tail(args: argparse.Namespace) -> None:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            mq = await AsyncClient.connect(args.url)
    except (MQError, TimeoutError) as e:
        raise failure(args.url, e) from None
    try:
        monitor = await mq.monitor(args.queue)
        seen = 0
        async for event in monitor:
            print_json(event) if args.json else print(event_line(event), flush=True)
            seen += 1
            if seen == args.count:
                break
    except MQError as e:
        raise failure(args.url, e) from None
    finally:
        await mq.close()
