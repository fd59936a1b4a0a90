"""How a connection is spoken to: one speaker per mode encodes replies, errors and pushes.

The mode is known after the first byte (mq/codec/sniff.py); from then on the server never asks
which mode a connection speaks, it asks its speaker. Speakers are stateless and shared.
"""

from __future__ import annotations

from typing import Any, Protocol

from mq.codec.binary import BinaryDecoder, encode_error, encode_frame, encode_reply
from mq.codec.commands import Command
from mq.codec.replies import Reply
from mq.codec.sniff import Mode
from mq.codec.text import TextDecoder
from mq.codec.text_lines import error_line, format_event, format_message, line
from mq.errors import MQError

Wire = dict[str, Any]  # a message or event map, shaped where it is made


class Speaker(Protocol):
    # Text replies carry no request id, so a text client can only match replies to requests by
    # their order: a command that waits (a long-poll GET, HISTORY) holds the ones typed after it.
    in_order: bool

    def reply(self, command: Command, reply: Reply) -> bytes: ...

    def error(self, rid: int | None, error: MQError) -> bytes: ...

    def messages(self, queue: str, msgs: list[Wire]) -> bytes:
        """Messages pushed to a subscription."""
        ...

    def event(self, event: Wire) -> bytes:
        """One MONITOR event."""
        ...

    def moved(self, queue: str, error: MQError) -> bytes:
        """A subscription ended because its queue's slot moved (`error` is MOVED or TRYAGAIN)."""
        ...

    def ended(self, stream: str, queue: str | None, error: MQError) -> bytes:
        """A `sub` or `monitor` stream (of `queue`; None: a monitor of all) the broker ended."""
        ...


class BinarySpeaker:
    in_order = False

    def reply(self, command: Command, reply: Reply) -> bytes:
        return encode_reply(command.rid, reply)

    def error(self, rid: int | None, error: MQError) -> bytes:
        return encode_error(rid, error)

    def messages(self, queue: str, msgs: list[Wire]) -> bytes:
        return encode_frame({"push": "msgs", "queue": queue, "msgs": msgs})

    def event(self, event: Wire) -> bytes:
        return encode_frame({"push": "event", **{k: v for k, v in event.items()
                                                 if v is not None}})

    def moved(self, queue: str, error: MQError) -> bytes:
        return encode_frame({"push": "moved", "queue": queue, "code": error.code.value,
                             **error.details})

    def ended(self, stream: str, queue: str | None, error: MQError) -> bytes:
        return encode_frame({"push": "ended", "stream": stream, "queue": queue,
                             "code": error.code.value, "message": error.message})


class TextSpeaker:
    in_order = True

    def reply(self, command: Command, reply: Reply) -> bytes:
        return reply.text()

    def error(self, rid: int | None, error: MQError) -> bytes:
        return error_line(error)

    def messages(self, queue: str, msgs: list[Wire]) -> bytes:
        return b"".join(line(format_message(m)) for m in msgs)

    def event(self, event: Wire) -> bytes:
        return line(format_event(event))

    def moved(self, queue: str, error: MQError) -> bytes:
        where = error.details.get("addr")
        return line(f"MOVED {queue} {error.details.get('slot', '-')} {where or '-'}")

    def ended(self, stream: str, queue: str | None, error: MQError) -> bytes:
        return line(f"ENDED {stream.upper()} {queue or '*'} {error.code.value} {error.message}")


Decoder = BinaryDecoder | TextDecoder


def for_mode(mode: Mode, max_frame_bytes: int, max_line_bytes: int) -> tuple[Decoder, Speaker]:
    """The decoder and the speaker of a connection that speaks `mode`."""
    if mode is Mode.TEXT:
        return TextDecoder(max_line_bytes), TextSpeaker()
    return BinaryDecoder(max_frame_bytes), BinarySpeaker()
