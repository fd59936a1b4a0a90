"""`mq user`: add, change, remove and list the users of a users file (mq/auth/users.py).

Secrets are read from a prompt (getpass: not echoed, not in the shell's history nor in `ps`),
or from the first line of standard input with --secret-stdin, for scripts; never from argv.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from mq.auth.hashing import hash_secret
from mq.auth.permissions import Permission
from mq.auth.users import (
    User,
    Users,
    UsersFileError,
    check_user_name,
    load_users,
    new_grants,
    save_users,
)
from mq.cli.common import Subparsers
from mq.limits import MAX_SECRET_BYTES


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("user", help="add, change or remove the users of a users file")
    users = p.add_subparsers(dest="user_command", required=True)
    for name, what in (("add", "add a user (or replace one's secret and permissions)"),
                       ("passwd", "change a user's secret"), ("remove", "remove a user"),
                       ("list", "list the users and their permissions")):
        q = users.add_parser(name, help=what)
        q.add_argument("--file", required=True, help="the users file (created by add)")
        if name == "list":
            continue
        q.add_argument("name", help="the user name")
        if name == "remove":
            continue
        q.add_argument("--secret-stdin", action="store_true",
                       help="read the secret from the first line of standard input")
        if name == "add":
            for perm in Permission:
                q.add_argument(f"--{perm.value}", action="append", default=[],
                               metavar="PATTERN", help=f"grant {perm.value} on queues "
                               "matching PATTERN (a glob: jobs.*); may repeat")
    p.set_defaults(run=run_user)


def run_user(args: argparse.Namespace) -> int:
    try:
        return _USER_COMMANDS[args.user_command](args)
    except (UsersFileError, ValueError, OSError) as e:
        print(f"mq user {args.user_command}: {e}", file=sys.stderr)
        return 1


def _read(path: str, missing_ok: bool = False) -> Users:
    if missing_ok and not Path(path).exists():
        return Users({})
    return load_users(path)


def _secret(args: argparse.Namespace) -> str:
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = getpass.getpass(f"secret for {args.name}: ")
        if getpass.getpass("again: ") != secret:
            raise ValueError("the two secrets differ")
    if not secret or secret != secret.strip(" \t") or not secret.isprintable():
        raise ValueError("a secret must be printable text, not empty, with no blank at either "
                         "end (text mode's AUTH could not send it)")
    if len(secret.encode()) > MAX_SECRET_BYTES:
        raise ValueError(f"a secret is at most {MAX_SECRET_BYTES} bytes (AUTH takes no more)")
    return secret


def _add(args: argparse.Namespace) -> int:
    users = _read(args.file, missing_ok=True)
    name = check_user_name(args.name)
    grants = new_grants((perm, pattern) for perm in Permission
                        for pattern in getattr(args, perm.value))
    save_users(args.file, users.with_user(User(name, hash_secret(_secret(args)), grants)))
    print(f"{'replaced' if users.get(name) else 'added'} {name} in {args.file}; "
          "`kill -HUP <broker pid>` makes a running broker reread it")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    users = _read(args.file)
    user = users.get(args.name)
    if user is None:
        raise ValueError(f"no user {args.name!r} in {args.file}")
    save_users(args.file, users.with_user(user.with_secret(hash_secret(_secret(args)))))
    print(f"changed the secret of {args.name} in {args.file}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    users = _read(args.file)
    if users.get(args.name) is None:
        raise ValueError(f"no user {args.name!r} in {args.file}")
    save_users(args.file, users.without(args.name))
    print(f"removed {args.name} from {args.file}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for name, user in sorted(_read(args.file).by_name.items()):
        grants = "  ".join(f"{perm.value}={','.join(user.grants.get(perm, ())) or '-'}"
                           for perm in Permission)
        print(f"{name}  {grants}")
    return 0


_USER_COMMANDS = {"add": _add, "passwd": _passwd, "remove": _remove, "list": _list}
