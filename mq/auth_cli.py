"""The security side of the `mq` command: `mq serve`'s --users/--tls flags, and `mq user`,
which edits a users file (mq/auth/users.py). Kept apart from cli.py so that both stay short.

Secrets are read from a prompt (getpass: not echoed, not in the shell's history nor in `ps`),
or from the first line of standard input with --secret-stdin, for scripts; never from argv.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

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
from mq.server.config import Config


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--users", dest="users_file", metavar="FILE",
                   help="users file (see `mq user add`): clients must AUTH, and may do only "
                   "what it grants them; SIGHUP rereads it")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback --host without --users, open to anyone")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain: the port speaks TLS only")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument("--tls-ca", metavar="PEM",
                   help="require client certificates signed by this CA")
    p.add_argument("--auth-failure-delay-s", type=float, default=d.auth_failure_delay_s,
                   help="a refused AUTH is answered this much later (default %(default)s)")
    p.add_argument("--max-auth-failures", type=int, default=d.max_auth_failures,
                   help="refused AUTHs before a connection is closed (default %(default)s)")


def serve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields of the flags above."""
    return {"users_file": args.users_file, "insecure": args.insecure,
            "tls_cert": args.tls_cert, "tls_key": args.tls_key, "tls_ca": args.tls_ca,
            "auth_failure_delay_s": args.auth_failure_delay_s,
            "max_auth_failures": args.max_auth_failures}


def add_user_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    if len(secret.encode()) > 1024:
        raise ValueError("a secret is at most 1024 bytes")
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
