"""`mq cluster status` and `mq cluster drain NODE`: read and steer a cluster through its etcd
(the brokers follow what etcd says; this talks to no broker)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from mq.cli.common import CliError, Subparsers, print_json
from mq.cli.tables import table

POLL_S = 0.5


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("cluster", help="the status of a cluster, or drain one of its brokers")
    commands = p.add_subparsers(dest="cluster_command", required=True)
    status = commands.add_parser("status", help="brokers, the controller, slots per broker and "
                                 "the map epoch")
    drain = commands.add_parser("drain", help="move a broker's slots to the others, and wait "
                                "until it owns none (then stop it)")
    drain.add_argument("node", help="the broker's node id")
    drain.add_argument("--timeout-s", type=float, default=300.0,
                       help="give up after this long (default %(default)s)")
    for q in (status, drain):
        q.add_argument("--etcd", default=os.environ.get("MQ_ETCD"), required="MQ_ETCD"
                       not in os.environ, help="etcd endpoints, host:port[,host:port...] "
                       "(default: $MQ_ETCD)")
        q.add_argument("--cluster", default=os.environ.get("MQ_CLUSTER"),
                       required="MQ_CLUSTER" not in os.environ,
                       help="the cluster's name (default: $MQ_CLUSTER)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    try:
        from mq.cluster.etcd import Etcd, EtcdUnavailable
        from mq.cluster.keys import Keys
    except ModuleNotFoundError as e:
        raise CliError(f"needs aetcd ({e}): pip install 'mq[cluster]'") from None
    try:
        etcd, keys = Etcd(args.etcd), Keys(args.cluster)
    except ValueError as e:
        raise CliError(str(e)) from None
    work = _status if args.cluster_command == "status" else _drain
    try:
        return asyncio.run(work(args, etcd, keys))
    except EtcdUnavailable as e:
        raise CliError(f"{e}; is etcd running there?") from None


async def _view(etcd: Any, keys: Any) -> Any:
    return keys.view(await etcd.read(keys.prefix))


async def _status(args: argparse.Namespace, etcd: Any, keys: Any) -> int:
    try:
        view = await _view(etcd, keys)
    finally:
        await etcd.close()
    described = view.map.describe()
    if args.json:
        print_json({"cluster": args.cluster, "controller": view.controller, **described})
        return 0
    nodes = sorted(set(view.map.brokers) | {o.node for o in view.map.owners.values()})
    rows = [[n, view.map.addr_of(n) or "(gone)", str(len(view.map.slots_of(n))),
             _roles(n, view)] for n in nodes]
    for text in table(["node", "addr", "slots", "role"], rows, text=(0, 1, 3)):
        print(text)
    print(f"cluster {args.cluster}: {len(view.map.owners)} of 1024 slots assigned, controller "
          f"{view.controller or '(none)'}, map epoch {described['map_epoch']}")
    return 0


def _roles(node: str, view: Any) -> str:
    roles = [r for r, yes in (("controller", node == view.controller),
                              ("leaving", node in view.leaving),
                              ("down", node not in view.live)) if yes]
    return ",".join(roles) or "-"


async def _drain(args: argparse.Namespace, etcd: Any, keys: Any) -> int:
    try:
        view = await _view(etcd, keys)
        if args.node not in view.live and not view.map.slots_of(args.node):
            raise CliError(f"no broker {args.node!r} in cluster {args.cluster} (brokers: "
                           f"{', '.join(sorted(view.live)) or 'none'})")
        if not view.live - {args.node} - view.leaving:
            raise CliError(f"{args.node} is the only broker that could serve the slots; start "
                           "another before draining it")
        await etcd.put(keys.leaving(args.node), b"")
        return await _wait_drained(args, lambda: _view(etcd, keys))
    finally:
        await etcd.close()


async def _wait_drained(args: argparse.Namespace, read: Callable[[], Any]) -> int:
    deadline = time.monotonic() + args.timeout_s
    last = -1
    while True:
        owned = len((await read()).map.slots_of(args.node))
        if owned != last:
            print(f"{args.node}: {owned} slots left", flush=True)
            last = owned
        if owned == 0:
            print(f"{args.node} is drained: it owns no slots and may be stopped")
            return 0
        if time.monotonic() > deadline:
            raise CliError(f"{args.node} still owns {owned} slots after {args.timeout_s:g} s; "
                           "is the cluster's controller running?")
        await asyncio.sleep(POLL_S)
