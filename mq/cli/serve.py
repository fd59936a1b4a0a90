"""`mq serve`: run a broker with the settings of its flags, MQ_* variables and a TOML file.

Every flag is made from a Config field (mq/server/settings.py says how each source names it);
nothing here lists settings one by one.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import ssl
import sys

from mq.auth.users import UsersFileError
from mq.cli.common import Subparsers
from mq.server.config import Config
from mq.server.listener import StartupError
from mq.server.settings import SourceError, Spec, render, resolve, specs
from mq.storage.base import StoreRefused, StoreUnavailable
from mq.storage.lock import LogRefused
from mq.storage.urls import shown


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run a broker", description=(
        "Run a broker. Every setting is also an MQ_* environment variable (MQ_LEASE_S) and a "
        "key of the --config file (lease_s = 30); a flag beats the variable, which beats the "
        "file, which beats the default."))
    p.add_argument("--config", default=os.environ.get("MQ_CONFIG"),
                   help="a TOML file of settings (default: $MQ_CONFIG)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings as a --config file, and exit")
    defaults = Config()
    for spec in specs():
        _add_flag(p, spec, getattr(defaults, spec.name))
    p.set_defaults(run=serve)


def _add_flag(p: argparse.ArgumentParser, spec: Spec, default: object) -> None:
    shown = f"{spec.rule.help} (default {default}; {spec.env})"
    if spec.kind is bool:
        p.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                       default=argparse.SUPPRESS, help=shown)
    else:
        p.add_argument(spec.flag, dest=spec.name, default=argparse.SUPPRESS,
                       metavar=_metavar(spec), help=shown)


def _metavar(spec: Spec) -> str:
    if spec.rule.choices:
        return "|".join(spec.rule.choices)
    return "SECONDS" if spec.name.endswith("_s") else spec.name.split("_")[-1].upper()


def serve(args: argparse.Namespace) -> int:
    try:
        config, given = resolve(vars(args), os.environ, args.config)
    except SourceError as e:
        print(f"mq serve: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(render(config, given))
        return 0
    from mq.server.run import serve as run_broker  # the server's imports only when serving
    try:
        run_broker(config)
    except (StartupError, LogRefused) as e:
        print(f"mq serve: {e}", file=sys.stderr)
        return 1
    except (StoreRefused, StoreUnavailable) as e:
        print(f"mq serve: cannot use {shown(config.db_path)} as the log: {e}", file=sys.stderr)
        return 1
    except (UsersFileError, ssl.SSLError, OSError) as e:  # a users file or certificate unusable
        print(f"mq serve: {e}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as e:
        print(f"mq serve: cannot use {config.db_path} as the log: {e}. Point --db at an mq log, "
              "or at a path where a new one may be created.", file=sys.stderr)
        return 1
    return 0
