"""One client connection: picks its mode from the first byte, decodes requests, holds replies
until the changes they confirm are committed, and applies back-pressure.

Replies are released in the order they were made. A text connection also executes its commands
one after another: a GET that waits holds the lines typed after it (the backlog).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from mq.codec.binary import BinaryDecoder, encode_error, encode_frame, encode_ok
from mq.codec.commands import Command, Quit, Rejected
from mq.codec.sniff import Mode, sniff_mode
from mq.codec.text import TextDecoder
from mq.codec.text_lines import EOL, format_event, format_message
from mq.codec.text_reply import encode_text_error, encode_text_reply
from mq.errors import MQError

if TYPE_CHECKING:
    from mq.server.app import BrokerServer
    from mq.server.sessions import Session
    from mq.server.waiters import Waiter

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class Connection(asyncio.Protocol):
    def __init__(self, server: BrokerServer) -> None:
        self.server = server
        self.id = next(_ids)
        self.anonymous_holder = f"c{self.id}"
        self.session: Session[Connection] | None = None
        self.peer = "?"
        self.mode: Mode | None = None
        self._decoder: BinaryDecoder | TextDecoder | None = None
        self._transport: asyncio.Transport | None = None
        self._held: deque[tuple[int, bytes]] = deque()  # (batch number, reply bytes)
        self.backlog: deque[Command | Rejected] = deque()  # text mode, behind a waiting GET
        self.blocked = False
        self.waiters: list[Waiter[Connection]] = []
        self.closing = False  # no more requests are read; close once replies are flushed
        self._read_holds: set[str] = set()  # why reading is paused; read again when empty

    @property
    def holder(self) -> str:
        """Who holds the leases taken here: the session if there is one, else this connection."""
        return self.session.holder if self.session is not None else self.anonymous_holder

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.anonymous_holder = f"c{self.id}@{self.peer}"
        self._transport.set_write_buffer_limits(high=self.server.config.write_buffer_high_bytes)
        self.server.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self._decoder is None:
            self.mode = sniff_mode(data[0])
            cfg = self.server.config
            self._decoder = (TextDecoder(cfg.max_line_bytes) if self.mode is Mode.TEXT
                             else BinaryDecoder(cfg.max_frame_bytes))
        self.server.run_round(self, self._decoder.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._transport = None
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests until it does.
        self.hold_reading("replies")

    def resume_writing(self) -> None:
        self.release_reading("replies")

    def hold_reading(self, reason: str) -> None:
        if self._transport is not None and not self._read_holds:
            self._transport.pause_reading()
        self._read_holds.add(reason)

    def release_reading(self, reason: str) -> None:
        if reason in self._read_holds:
            self._read_holds.discard(reason)
            if self._transport is not None and not self._read_holds:
                self._transport.resume_reading()

    # --- replies ------------------------------------------------------------------------------

    def encode_result(self, command: Command, result: dict[str, Any]) -> bytes:
        if self.mode is Mode.TEXT:
            return encode_text_reply(command, result)
        return encode_ok(command.rid, result)

    def encode_push_msgs(self, queue: str, msgs: list[dict[str, Any]]) -> bytes:
        if self.mode is Mode.TEXT:
            return b"".join(format_message(m).encode("utf-8", "surrogateescape") + EOL
                            for m in msgs)
        return encode_frame({"push": "msgs", "queue": queue, "msgs": msgs})

    def encode_push_event(self, event: dict[str, Any]) -> bytes:
        if self.mode is Mode.TEXT:
            return format_event(event).encode("utf-8", "surrogateescape") + EOL
        return encode_frame({"push": "event", **{k: v for k, v in event.items()
                                                 if v is not None}})

    def encode_failure(self, rid: int | None, error: MQError) -> bytes:
        if error.fatal:
            self.closing = True
        if self.mode is Mode.TEXT:
            return encode_text_error(error)
        return encode_error(rid, error)

    def quit_after(self, command: Command) -> None:
        if isinstance(command, Quit):
            self.closing = True

    def send(self, number: int, data: bytes) -> bool:
        """Send `data` once batch `number` is committed; True if it had to be held."""
        if not self._held and number <= self.server.committed:
            self._write(data)
            return False
        self._held.append((number, data))
        return True

    def release(self, committed: int) -> bool:
        """Send the held replies whose batch is committed; True while some remain held."""
        held = self._held
        while held and held[0][0] <= committed:
            self._write(held.popleft()[1])
        self.close_if_done()
        return bool(held)

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def close_if_done(self) -> None:
        if self.closing and not self._held and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping unsent bytes: for a peer that stopped reading (half-open)."""
        self.closing = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close once buffered replies are written."""
        if self._transport is not None:
            self._transport.close()
