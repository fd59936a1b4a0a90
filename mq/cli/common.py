"""What every client subcommand of `mq` shares: `--url` (MQ_URL by default), `--json`, the
connection to the broker through the SDK, and one line instead of a traceback when it fails."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

from mq_client import Client
from mq_client.errors import ConnectionLost, MQError
from mq_client.url import DEFAULT_URL, parse_url

# argparse's class is generic only to type checkers: the alias is a string at run time
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

TIMEOUT_S = 10.0  # how long a subcommand waits for the broker without progress
WIDTH = 80  # what every table fits in


class CliError(Exception):
    """A subcommand cannot do its work; the message says why and what to do, in one line."""


def add_client_parser(sub: Subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand that talks to a broker: it takes `--url`, defaulting to $MQ_URL."""
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--url", default=os.environ.get("MQ_URL", DEFAULT_URL),
                   help="the broker, mq://HOST:PORT (default: $MQ_URL, else %(default)s)")
    return p


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON, one object per line")


def check_url(url: str) -> None:
    try:
        parse_url(url)
    except ValueError as e:
        raise CliError(f"{e}. Give --url (or MQ_URL) as mq://HOST:PORT") from None


def failure(url: str, e: MQError | TimeoutError) -> CliError:
    """What went wrong talking to the broker at `url`, said in one line."""
    if isinstance(e, ConnectionLost):
        return CliError(f"{e.message}. Is a broker running there? Start one with `mq serve` "
                        "(or `make run`), or point --url (or MQ_URL) at it")
    if isinstance(e, TimeoutError):
        return CliError(f"the broker at {url} did not answer within {TIMEOUT_S:g} s")
    return CliError(str(e))


@contextmanager
def connected(url: str) -> Iterator[Client]:
    """A blocking SDK client on `url`; what goes wrong becomes a CliError."""
    check_url(url)
    try:
        with Client.connect(url, timeout_s=TIMEOUT_S) as client:
            yield client
    except (MQError, TimeoutError) as e:
        raise failure(url, e) from None


def print_json(value: Any) -> None:
    """One JSON line; bytes (bodies) as text, a byte that is not UTF-8 as \\udcxx."""
    print(json.dumps(value, default=_bytes_text), flush=True)


def _bytes_text(value: object) -> str | dict[str, str]:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    if isinstance(value, Mapping):  # a message's headers
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def note(text: str) -> None:
    """A line for the person at the terminal, not for a pipe: stderr."""
    print(text, file=sys.stderr)
