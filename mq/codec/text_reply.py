"""Text mode replies: each command's declared format (`Spec.reply`, in replies.py) applied to
its result fields, the same a binary reply carries; errors as `-ERR <CODE> <text>`."""

from __future__ import annotations

from mq.codec.commands import REGISTRY, Command
from mq.codec.registry import Result
from mq.codec.text_lines import line
from mq.errors import MQError


def encode_text_reply(command: Command, result: Result) -> bytes:
    """The text reply to `command` given the same result fields a binary reply carries."""
    fmt = REGISTRY.by_type[type(command)].spec.reply
    return fmt(result) if fmt is not None else line("+OK")


def encode_text_error(error: MQError) -> bytes:
    return line(f"-ERR {error.code.value} {error.message}")
