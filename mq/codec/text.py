"""Text mode for people at a telnet prompt (protocol.md section 3): lines to commands.

One command per line (LF or CRLF); its verb picks the command's entry in the registry and the
entry's syntax reads the rest (syntax.py). Replies are typed values whose `text()` gives their
lines (replies.py). Every reply ends with a line that starts with `+`, `-ERR ` or `MSG `, so a
program can read a reply without knowing its length in advance.
"""

from __future__ import annotations

from mq.codec.commands import REGISTRY, Command, Rejected
from mq.codec.syntax import utf8
from mq.errors import Code, MQError, bad_request


def parse_line(line: bytes) -> Command | None:
    """One text line (terminator removed) to a command; None for a blank line."""
    line = line.lstrip(b" \t")
    if not line.rstrip(b" \t"):
        return None
    end = min(i for i in (line.find(b" "), line.find(b"\t"), len(line)) if i >= 0)
    head, rest = line[:end], line[end + 1 :]  # the verb, one blank, the rest
    name = head.decode("ascii", errors="replace").upper()
    entry = REGISTRY.by_verb.get(name)
    if entry is None:
        utf8(rest, "arguments")  # a line that is not UTF-8 is told so first, known verb or not
        raise MQError(Code.UNKNOWN_OP, f"unknown command {name!r}; type HELP for the list")
    command: Command = entry.syntax.parse(entry, rest)
    return command


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
