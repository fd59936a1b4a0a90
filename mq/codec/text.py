"""Text mode for people at a telnet prompt (protocol.md section 3): lines to commands.

One command per line (LF or CRLF). Replies are made in text_reply.py. Every reply ends with a
line that starts with `+`, `-ERR ` or `MSG `, so a program can read a reply without knowing its
length in advance.
"""

from __future__ import annotations

from collections.abc import Callable

from mq.codec.binary import Rejected
from mq.codec.commands import (
    PLAIN,
    Ack,
    AckMany,
    Bind,
    Bindings,
    Command,
    Declare,
    DeleteQueue,
    Explain,
    Fanout,
    Get,
    Heartbeat,
    Hello,
    Help,
    History,
    Join,
    Leave,
    ListQueues,
    Monitor,
    Nack,
    Peek,
    Ping,
    Publish,
    PublishOptions,
    Purge,
    Quit,
    Receipt,
    Redrive,
    Stats,
    Subscribe,
    Touch,
    Unmonitor,
    Unsubscribe,
)
from mq.errors import Code, MQError, bad_request

USAGE: dict[str, str] = {
    "PING": "PING                                      check the connection",
    "PUB": "PUB <queue> [option=V ...] [--] <body>    store a message; options: key priority "
           "delay_s not_before ttl_s dedup",
    "FANOUT": "FANOUT <topic> [option=V ...] <body>      publish to every queue bound to topic",
    "GET": "GET <queue> [lease_s] [wait_s]            lease the next ready message",
    "ACK": "ACK <receipt> [receipt ...]               done with messages: remove them",
    "NACK": "NACK <receipt> [delay_s] [error text]     give a message back, now or after a delay",
    "TOUCH": "TOUCH <receipt> [lease_s]                 extend a lease",
    "SUB": "SUB <queue> [prefetch] [lease_s]          have messages pushed as MSG lines",
    "UNSUB": "UNSUB <queue>                             stop pushing",
    "HELLO": "HELLO <consumer> [heartbeat_s] [session]  start or resume a consumer session",
    "HEARTBEAT": "HEARTBEAT                                 a sign of life for your session",
    "JOIN": "JOIN <queue> <group> [prefetch]           join a consumer group (after HELLO)",
    "LEAVE": "LEAVE <queue>                             leave the group on a queue",
    "DECLARE": "DECLARE <queue> [setting=V ...]           settings: retention_s lease_s "
               "max_deliveries dead_letter dedup_window_s",
    "PEEK": "PEEK <queue> [count]                      the next messages, without leasing them",
    "PURGE": "PURGE <queue>                             remove every message of a queue",
    "DELETE": "DELETE <queue>                            remove a queue and its messages",
    "REDRIVE": "REDRIVE <dead-letter queue> [count] [to]  move dead letters back",
    "BIND": "BIND <topic> <queue>                      copy what FANOUT sends to topic here",
    "UNBIND": "UNBIND <topic> <queue>                    stop that",
    "BINDINGS": "BINDINGS [topic]                          which queues each topic feeds",
    "EXPLAIN": "EXPLAIN <msg_id>                          why is this message (not) delivered?",
    "HISTORY": "HISTORY <msg_id>                          its life, from the log",
    "MONITOR": "MONITOR [queue]                           a live line for every message event",
    "UNMONITOR": "UNMONITOR                                 stop those lines",
    "QUEUES": "QUEUES                                    list the queues",
    "STATS": "STATS [queue]                             counts per queue",
    "HELP": "HELP                                      this list",
    "QUIT": "QUIT                                      close the connection",
}


# --- bodies -------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
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
        elif nxt == ord("x") and i + 4 <= n and all(c in _HEX for c in raw[i + 2 : i + 4]):
            out.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        else:
            raise bad_request("bad escape in body: use \\\\ \\n \\r \\t or \\xHH")
    return bytes(out)


# --- parsing ------------------------------------------------------------------------------


def _number(token: str, name: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise bad_request(f"{name} must be a number, got {token!r}") from None


def _integer(token: str, name: str) -> int:
    if not token.isascii():
        raise bad_request(f"{name} must be an integer, got {token!r}")
    try:
        return int(token)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {token!r}") from None


def _args(cmd: str, args: list[str], low: int, high: int) -> list[str]:
    if not low <= len(args) <= high:
        raise bad_request(f"usage: {USAGE[cmd].split('  ')[0].strip()}")
    return args


def _int(args: list[str], i: int, name: str) -> int | None:
    return _integer(args[i], name) if len(args) > i else None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _opt(args: list[str], i: int, name: str) -> float | None:
    return _number(args[i], name) if len(args) > i else None


def _bare(cmd: str, command: Command) -> Callable[[list[str]], Command]:
    def parse(args: list[str]) -> Command:
        _args(cmd, args, 0, 0)
        return command

    return parse


DECLARE_SETTINGS: dict[str, Callable[[str, str], object]] = {
    "retention_s": _number, "lease_s": _number, "max_deliveries": _integer,
    "dead_letter": lambda v, n: v, "dedup_window_s": _number,
}


def _parse_declare(args: list[str]) -> Declare:
    _args("DECLARE", args, 1, 1 + len(DECLARE_SETTINGS))
    settings: dict[str, object] = {}
    for token in args[1:]:
        name, eq, value = token.partition("=")
        convert = DECLARE_SETTINGS.get(name)
        if not eq or convert is None:
            raise bad_request(f"unknown setting {token!r}: use "
                              + " ".join(f"{n}=V" for n in DECLARE_SETTINGS))
        settings[name] = convert(value, name)
    return Declare(args[0], **settings)  # type: ignore[arg-type]


def _parse_nack(args: list[str], rest: str) -> Nack:
    receipt = Receipt.parse(_args("NACK", args, 1, 10_000)[0])
    delay = _opt(args, 1, "delay_s") or 0.0
    error = rest.split(None, 2)[2].strip() if len(args) > 2 else None
    return Nack(receipt, delay, None, error)


_PARSERS: dict[str, Callable[[list[str]], Command]] = {
    "PING": _bare("PING", Ping()),
    "GET": lambda a: Get(
        _args("GET", a, 1, 3)[0], _opt(a, 1, "lease_s"), _opt(a, 2, "wait_s") or 0.0
    ),
    "ACK": lambda a: (Ack(Receipt.parse(a[0])) if len(_args("ACK", a, 1, 10_000)) == 1
                      else AckMany(tuple(Receipt.parse(r) for r in a))),
    "TOUCH": lambda a: Touch(Receipt.parse(_args("TOUCH", a, 1, 2)[0]), _opt(a, 1, "lease_s")),
    "SUB": lambda a: Subscribe(_args("SUB", a, 1, 3)[0], _or(_int(a, 1, "prefetch"), 100),
                               _opt(a, 2, "lease_s")),
    "UNSUB": lambda a: Unsubscribe(_args("UNSUB", a, 1, 1)[0]),
    "DECLARE": _parse_declare,
    "HELLO": lambda a: Hello(_args("HELLO", a, 1, 3)[0], _opt(a, 1, "heartbeat_s"),
                             a[2] if len(a) > 2 else None),
    "HEARTBEAT": _bare("HEARTBEAT", Heartbeat()),
    "HB": _bare("HEARTBEAT", Heartbeat()),
    "JOIN": lambda a: Join(_args("JOIN", a, 2, 3)[0], a[1], _int(a, 2, "prefetch")),
    "LEAVE": lambda a: Leave(_args("LEAVE", a, 1, 1)[0]),
    "PEEK": lambda a: Peek(_args("PEEK", a, 1, 2)[0], _or(_int(a, 1, "count"), 10)),
    "PURGE": lambda a: Purge(_args("PURGE", a, 1, 1)[0]),
    "DELETE": lambda a: DeleteQueue(_args("DELETE", a, 1, 1)[0]),
    "REDRIVE": lambda a: Redrive(_args("REDRIVE", a, 1, 3)[0], _or(_int(a, 1, "count"), 1000),
                                 a[2] if len(a) > 2 else None),
    "BIND": lambda a: Bind(_args("BIND", a, 2, 2)[0], a[1]),
    "UNBIND": lambda a: Bind(_args("UNBIND", a, 2, 2)[0], a[1], unbind=True),
    "BINDINGS": lambda a: Bindings(_args("BINDINGS", a, 0, 1)[0] if a else None),
    "EXPLAIN": lambda a: Explain(_integer(_args("EXPLAIN", a, 1, 1)[0], "msg_id")),
    "HISTORY": lambda a: History(_integer(_args("HISTORY", a, 1, 1)[0], "msg_id")),
    "MONITOR": lambda a: Monitor(_args("MONITOR", a, 0, 1)[0] if a else None),
    "UNMONITOR": _bare("UNMONITOR", Unmonitor()),
    "QUEUES": _bare("QUEUES", ListQueues()),
    "STATS": lambda a: Stats(_args("STATS", a, 0, 1)[0] if a else None),
    "HELP": _bare("HELP", Help()),
    "QUIT": _bare("QUIT", Quit()),
}

PUB_OPTIONS: dict[bytes, Callable[[str, str], object]] = {
    b"key": lambda v, n: v, b"priority": _integer, b"delay_s": _number,
    b"not_before": _number, b"ttl_s": _number, b"dedup": lambda v, n: v,
}


def _publish_parts(cmd: str, rest: bytes) -> tuple[str, str | None, PublishOptions, bytes]:
    """`<name> [option=value ...] [--] <body>`: options are known names only; `--` ends them,
    for a body that itself starts like an option."""
    name, space, body = rest.partition(b" ")
    if not space:
        raise bad_request(f"usage: {USAGE[cmd].split('  ')[0].strip()}")
    options: dict[str, object] = {}
    while True:
        token, space, remainder = body.partition(b" ")
        option, eq, value = token.partition(b"=")
        if token == b"--":
            body = remainder
            break
        convert = PUB_OPTIONS.get(option)
        if not (eq and convert is not None and space):
            break
        options[option.decode()] = convert(_utf8(value, option.decode()), option.decode())
        body = remainder
    key = options.pop("key", None)
    if "dedup" in options:
        options["dedup_id"] = options.pop("dedup")
    publish_options = PublishOptions(**options) if options else PLAIN  # type: ignore[arg-type]
    return (name.decode("ascii", errors="replace"), key if isinstance(key, str) else None,
            publish_options, unescape_body(body))


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{name} must be UTF-8 text") from None


def parse_line(line: bytes) -> Command | None:
    """One text line (terminator removed) to a command; None for a blank line."""
    line = line.lstrip(b" \t")
    if not line.strip():
        return None
    head, _, rest = line.partition(b" ")
    name = head.decode("ascii", errors="replace").upper()
    if name == "PUB":
        queue, key, options, body = _publish_parts("PUB", rest)
        return Publish(queue, body, key, None, options)
    if name == "FANOUT":
        topic, key, options, body = _publish_parts("FANOUT", rest)
        return Fanout(topic, body, key, None, options)
    text = _utf8(rest, "arguments")
    if name == "NACK":
        return _parse_nack(text.split(), text)
    parse = _PARSERS.get(name)
    if parse is None:
        raise MQError(Code.UNKNOWN_OP, f"unknown command {name!r}; type HELP for the list")
    return parse(text.split())


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
            except (ValueError, TypeError, OverflowError) as e:  # a value no check anticipated
                out.append(Rejected(None, bad_request(f"invalid argument: {e}")))
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
