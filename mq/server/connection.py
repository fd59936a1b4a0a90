"""One client connection: picks its mode from the first byte, decodes requests, holds replies
until the changes they confirm are committed, and applies back-pressure.

A connection knows the broker only as a `Round`: it hands over what it decoded and learns which
batch is committed. Replies are released in the order they were made. A connection whose
speaker needs replies in order (text mode) executes its commands one after another: a command
that waits holds the lines typed after it (the backlog).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Protocol, cast

from mq.codec.binary import Rejected
from mq.codec.commands import Command
from mq.codec.sniff import sniff_mode
from mq.server.config import Config
from mq.server.outcome import Peer
from mq.server.sessions import Session
from mq.server.speaker import BinarySpeaker, Decoder, Speaker, for_mode

_ids = itertools.count(1)
Item = Command | Rejected


class Round(Protocol):
    """What a connection needs of the broker."""

    @property
    def committed(self) -> int:
        """The number of the last committed batch."""
        ...

    def opened(self, conn: Connection) -> None: ...

    def received(self, conn: Connection, items: list[Item]) -> None:
        """Execute what `conn` sent; its replies come back through `send`."""
        ...

    def closed(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    def __init__(self, broker: Round, config: Config) -> None:
        self.broker = broker
        self.config = config
        self.id = next(_ids)
        self.anonymous_holder = f"c{self.id}"
        self.session: Session[Peer] | None = None
        self.peer = "?"
        self.speaker: Speaker = BinarySpeaker()  # until the first byte says otherwise
        self._decoder: Decoder | None = None
        self._transport: asyncio.Transport | None = None
        self._held: deque[tuple[int, bytes]] = deque()  # (batch number, reply bytes)
        self.backlog: deque[Item] = deque()  # in-order mode: commands behind a waiting one
        self.blocked = False  # in-order mode: a command is waiting for its answer
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
        self._transport.set_write_buffer_limits(high=self.config.write_buffer_high_bytes)
        self.broker.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self._decoder is None:
            self._decoder, self.speaker = for_mode(sniff_mode(data[0]),
                                                   self.config.max_frame_bytes,
                                                   self.config.max_line_bytes)
        self.broker.received(self, self._decoder.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._transport = None
        self.broker.closed(self)

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

    def send(self, number: int, data: bytes) -> bool:
        """Send `data` once batch `number` is committed; True if it had to be held."""
        if not self._held and number <= self.broker.committed:
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
