"""Text mode for people at a telnet prompt (protocol.md section 3).

One command per line (LF or CRLF). Every reply ends with a line that starts with `+`, `-ERR `
or `MSG `, so a program can read a reply without knowing its length in advance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mq.codec.binary import Rejected
from mq.codec.commands import (
    Ack,
    AckMany,
    Command,
    Declare,
    Get,
    Heartbeat,
    Hello,
    Help,
    Join,
    Leave,
    ListQueues,
    Nack,
    Ping,
    Publish,
    Quit,
    Receipt,
    Stats,
    Touch,
)
from mq.errors import Code, MQError, bad_request

EOL = b"\r\n"

USAGE: dict[str, str] = {
    "PING": "PING                                   check the connection",
    "PUB": "PUB <queue> [key=K] <body>             store a message; body is the rest of the line",
    "GET": "GET <queue> [lease_s] [wait_s]         lease the next ready message",
    "ACK": "ACK <receipt> [receipt ...]            done with messages: remove them",
    "NACK": "NACK <receipt> [delay_s]               give a message back, now or after a delay",
    "TOUCH": "TOUCH <receipt> [lease_s]              extend a lease",
    "DECLARE": "DECLARE <queue> [retention_s=N] [lease_s=N]  create a queue or change its settings",
    "HELLO": "HELLO <consumer> [heartbeat_s] [session] start or resume a consumer session",
    "HEARTBEAT": "HEARTBEAT                              a sign of life for your session",
    "JOIN": "JOIN <queue> <group> [prefetch]        join a consumer group (after HELLO)",
    "LEAVE": "LEAVE <queue>                          leave the group on a queue",
    "QUEUES": "QUEUES                                 list the queues",
    "STATS": "STATS [queue]                          counts per queue",
    "HELP": "HELP                                   this list",
    "QUIT": "QUIT                                   close the connection",
}


# --- bodies -------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_UNESCAPES = {ord("\\"): 0x5C, ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09}


def escape_body(body: bytes) -> str:
    """Render a body on one line; `unescape_body` reverses it exactly."""
    text = body.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_body(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte != 0x5C:
            out.append(byte)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < n else None
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
            i += 2
        elif nxt == ord("x") and i + 4 <= n:
            try:
                out.append(int(raw[i + 2 : i + 4].decode("ascii"), 16))
            except (ValueError, UnicodeDecodeError):
                raise bad_request(f"bad escape {raw[i:i + 4]!r}: \\x needs 2 hex digits") from None
            i += 4
        else:
            raise bad_request("bad escape in body: use \\\\ \\n \\r \\t or \\xHH")
    return bytes(out)


# --- parsing ------------------------------------------------------------------------------


def _number(token: str, name: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise bad_request(f"{name} must be a number of seconds, got {token!r}") from None


def _args(cmd: str, args: list[str], low: int, high: int) -> list[str]:
    if not low <= len(args) <= high:
        raise bad_request(f"usage: {USAGE[cmd].split('  ')[0].strip()}")
    return args


def _parse_declare(args: list[str]) -> Declare:
    _args("DECLARE", args, 1, 3)
    settings: dict[str, float] = {}
    for token in args[1:]:
        name, eq, value = token.partition("=")
        if not eq or name not in ("retention_s", "lease_s"):
            raise bad_request(f"unknown setting {token!r}: use retention_s=N or lease_s=N")
        settings[name] = _number(value, name)
    return Declare(args[0], settings.get("retention_s"), settings.get("lease_s"))


def _int(args: list[str], i: int, name: str) -> int | None:
    if len(args) <= i:
        return None
    try:
        return int(args[i])
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {args[i]!r}") from None


def _opt(args: list[str], i: int, name: str) -> float | None:
    return _number(args[i], name) if len(args) > i else None


def _bare(cmd: str, command: Command) -> Callable[[list[str]], Command]:
    def parse(args: list[str]) -> Command:
        _args(cmd, args, 0, 0)
        return command

    return parse


_PARSERS: dict[str, Callable[[list[str]], Command]] = {
    "PING": _bare("PING", Ping()),
    "GET": lambda a: Get(
        _args("GET", a, 1, 3)[0], _opt(a, 1, "lease_s"), _opt(a, 2, "wait_s") or 0.0
    ),
    "ACK": lambda a: (Ack(Receipt.parse(a[0])) if len(_args("ACK", a, 1, 10_000)) == 1
                      else AckMany(tuple(Receipt.parse(r) for r in a))),
    "NACK": lambda a: Nack(Receipt.parse(_args("NACK", a, 1, 2)[0]), _opt(a, 1, "delay_s") or 0.0),
    "TOUCH": lambda a: Touch(Receipt.parse(_args("TOUCH", a, 1, 2)[0]), _opt(a, 1, "lease_s")),
    "DECLARE": _parse_declare,
    "HELLO": lambda a: Hello(_args("HELLO", a, 1, 3)[0], _opt(a, 1, "heartbeat_s"),
                             a[2] if len(a) > 2 else None),
    "HEARTBEAT": _bare("HEARTBEAT", Heartbeat()),
    "HB": _bare("HEARTBEAT", Heartbeat()),
    "JOIN": lambda a: Join(_args("JOIN", a, 2, 3)[0], a[1], _int(a, 2, "prefetch")),
    "LEAVE": lambda a: Leave(_args("LEAVE", a, 1, 1)[0]),
    "QUEUES": _bare("QUEUES", ListQueues()),
    "STATS": lambda a: Stats(_args("STATS", a, 0, 1)[0] if a else None),
    "HELP": _bare("HELP", Help()),
    "QUIT": _bare("QUIT", Quit()),
}


PUB_OPTIONS = (b"key",)


def _parse_pub(rest: bytes) -> Publish:
    """`PUB <queue> [option=value ...] [--] <body>`: options are known names only; `--` ends
    them, for a body that itself starts like an option."""
    queue, space, body = rest.partition(b" ")
    if not space:
        raise bad_request("usage: PUB <queue> [key=K] <body>")
    options: dict[bytes, bytes] = {}
    while True:
        token, space, remainder = body.partition(b" ")
        option, eq, value = token.partition(b"=")
        if token == b"--":
            body = remainder
            break
        if not (eq and option in PUB_OPTIONS and space):
            break
        options[option] = value
        body = remainder
    key = options.get(b"key")
    return Publish(queue.decode("ascii", errors="replace"), unescape_body(body),
                   None if key is None else _utf8(key, "key"))


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{name} must be UTF-8 text") from None


def parse_line(line: bytes) -> Command | None:
    """One text line (terminator removed) to a command; None for a blank line."""
    head, _, rest = line.partition(b" ")
    if not head.strip():
        return None
    name = head.decode("ascii", errors="replace").upper()
    if name == "PUB":
        return _parse_pub(rest)
    parse = _PARSERS.get(name)
    if parse is None:
        raise MQError(Code.UNKNOWN_OP, f"unknown command {name!r}; type HELP for the list")
    try:
        args = rest.decode("utf-8").split()
    except UnicodeDecodeError:
        raise bad_request("arguments must be UTF-8 text") from None
    return parse(args)


class TextDecoder:
    """Splits a byte stream into lines and lines into commands.

    A line longer than `max_line_bytes` is rejected once and the rest of it, up to the next LF,
    is discarded without being buffered, so a 10 MB line costs no more memory than a short one.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._discarding = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Command | Rejected]:
        out: list[Command | Rejected] = []
        buffer = self._buffer
        buffer += data
        pos = 0
        while True:
            newline = buffer.find(b"\n", pos)
            if self._discarding:
                if newline < 0:
                    pos = len(buffer)
                    break
                self._discarding = False
                pos = newline + 1
                continue
            if newline < 0:
                if len(buffer) - pos > self.max_line_bytes:
                    out.append(self._too_long())
                    self._discarding = True
                    pos = len(buffer)
                break
            line = bytes(buffer[pos:newline])
            pos = newline + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line_bytes:
                out.append(self._too_long())
                continue
            try:
                command = parse_line(line)
            except MQError as e:
                out.append(Rejected(None, e))
                continue
            if command is not None:
                out.append(command)
        del buffer[:pos]
        return out

    def _too_long(self) -> Rejected:
        return Rejected(
            None,
            MQError(
                Code.LINE_TOO_LONG,
                f"line is longer than max_line_bytes={self.max_line_bytes}; it was discarded",
            ),
        )


# --- replies ------------------------------------------------------------------------------


def _line(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape") + EOL


def format_message(m: dict[str, Any]) -> str:
    return f"MSG {m['receipt']} {m['queue']} {m['deliveries']} {escape_body(m['body'])}"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left-aligned, the others (numbers) right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [fmt(headers)] + [fmt(r) for r in rows]


STATS_COLUMNS = [
    "ready", "delayed", "leased", "poisoned", "published", "acked", "expired", "released",
    "dropped", "oldest_ready_s",
]


def _number_text(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def stats_table(queues: dict[str, dict[str, Any]]) -> list[str]:
    rows = [[name, *(_number_text(q[c]) for c in STATS_COLUMNS)]
            for name, q in sorted(queues.items())]
    return table(["queue", *STATS_COLUMNS], rows)


GROUP_COLUMNS = ["leases", "prefetch", "keys", "ring_share", "last_heartbeat_s_ago"]


def group_table(queues: dict[str, dict[str, Any]]) -> list[str]:
    """One row per member of each queue's consumer group; empty when there are no groups."""
    rows = []
    for name, q in sorted(queues.items()):
        group = q.get("group")
        if not group:
            continue
        for consumer, m in group["members"].items():
            rows.append([f"{name}/{group['group']}", consumer,
                         *(_number_text(m[c]) for c in GROUP_COLUMNS)])
    return table(["queue/group", "consumer", *GROUP_COLUMNS], rows) if rows else []


def _seconds(value: float) -> str:
    return f"{value:g}"


def encode_text_reply(command: Command, result: dict[str, Any]) -> bytes:
    """The text reply to `command` given the same result fields a binary reply carries."""
    if isinstance(command, Ping):
        return _line("+PONG")
    if isinstance(command, Publish):
        return _line(f"+OK {result['msg_id']}")
    if isinstance(command, Get):
        msgs = result["msgs"]
        return _line(format_message(msgs[0])) if msgs else _line("+EMPTY")
    if isinstance(command, AckMany):
        failed = result["failed"]
        return b"".join(_line(f"failed {f['receipt']} {f['code']} {f['message']}")
                        for f in failed) + _line(f"+OK {result['acked']} acked, "
                                                 f"{len(failed)} failed")
    if isinstance(command, Touch):
        return _line(f"+OK {_seconds(result['lease_s'])}")
    if isinstance(command, Declare):
        return _line(
            f"+OK {result['queue']} retention_s={_seconds(result['retention_s'])}"
            f" lease_s={_seconds(result['lease_s'])}"
        )
    if isinstance(command, ListQueues):
        names = result["queues"]
        return b"".join(_line(n) for n in names) + _line(f"+OK {len(names)} queues")
    if isinstance(command, Stats):
        queues = result["queues"]
        groups = group_table(queues)
        rows = stats_table(queues) + (["", *groups] if groups else [])
        return b"".join(_line(row) for row in rows) + _line(f"+OK {len(queues)} queues")
    if isinstance(command, Help):
        return b"".join(_line(u) for u in USAGE.values()) + _line("+OK")
    if isinstance(command, Quit):
        return _line("+BYE")
    if isinstance(command, Hello):
        return _line(
            f"+OK session {result['session']} heartbeat_s={_seconds(result['heartbeat_s'])}"
            f" dead_after_s={_seconds(result['dead_after_s'])}"
            f" grace_s={_seconds(result['grace_s'])}"
            f" resumed={'yes' if result['resumed'] else 'no'}"
        )
    if isinstance(command, Join):
        return _line(f"+OK joined {result['queue']}/{result['group']} as {result['consumer']}"
                     f" prefetch={result['prefetch']} members={result['members']}")
    return _line("+OK")


def encode_text_error(error: MQError) -> bytes:
    return _line(f"-ERR {error.code.value} {error.message}")
