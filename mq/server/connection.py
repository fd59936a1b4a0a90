"""One client connection: picks its mode from the first byte, decodes requests, holds replies
until the changes they confirm are committed, and applies back-pressure.

A connection knows the broker only as a `Round`: it hands over what it decoded and learns which
batch is committed. Replies are released in the order they were made.

Back-pressure. What the client sent is decoded into the backlog and executed from there. The
broker stops executing a connection's backlog while its unread replies are above
`write_buffer_high_bytes` (so 100 PEEKs of a big message cost one reply's memory, not 100), and
stops reading its socket while the backlog or its replies waiting for a commit are above their
bounds: the rest of a fast client's requests wait in its own socket, not in the broker. A
connection whose speaker needs replies in order (text mode) also holds its backlog while a
command waits for its answer.

A client that shuts down its sending side (EOF) still gets every reply to what it sent; the
connection closes once they are out. Its GETs that wait are answered at once, empty: TCP cannot
tell a half-closed client from one that closed, and the latter must not hold the broker's
resources for the whole of its `wait_s`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Protocol, cast

from mq.codec.binary import BinaryDecoder
from mq.codec.commands import Command, Rejected
from mq.codec.sniff import sniff_mode
from mq.errors import MQError
from mq.server.config import Config
from mq.server.outcome import Peer
from mq.server.sessions import Session
from mq.server.speaker import BinarySpeaker, Decoder, Speaker, for_mode

_ids = itertools.count(1)
Item = Command | Rejected
NOT_A_REPLY = -1  # the rid of held bytes that answer no request: pushes and events


Out = tuple[bytes, int | None]  # a reply's bytes and the rid it answers (or NOT_A_REPLY)


class Held(NamedTuple):
    """The replies of one round to this connection, in order, held for one commit."""

    number: int  # the batch whose commit they wait for; 0: none
    replies: list[Out]


@dataclass(slots=True)
class Traffic:
    """What all connections together did since the broker started (for metrics)."""

    opened: int = 0  # connections accepted
    bytes_in: int = 0  # read from clients
    bytes_out: int = 0  # handed to the sockets of clients


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

    def writable(self, conn: Connection) -> None:
        """The client read its replies: execute what waits in its backlog."""
        ...

    def sent_all(self, conn: Connection) -> None:
        """The client shut down its sending side (or closed): answer what it sent, then close."""
        ...

    def closed(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    def __init__(self, broker: Round, config: Config, traffic: Traffic) -> None:
        self.broker = broker
        self.config = config
        self.traffic = traffic
        self.id = next(_ids)
        self.anonymous_holder = f"c{self.id}"
        self.session: Session[Peer] | None = None
        self.user: str | None = None  # who it authenticated as (access.py)
        self.auth_failures = 0
        self.authenticating = False
        self.peer = "?"
        self.speaker: Speaker = BinarySpeaker()  # until the first byte says otherwise
        self._decoder: Decoder | None = None
        self._transport: asyncio.Transport | None = None
        self._held: deque[Held] = deque()  # replies and pushes waiting for their commit
        self._held_replies = 0  # how many replies those hold together
        self.unsent_bytes = 0  # replies made but not yet handed to the socket
        self.backlog: deque[Item] = deque()  # read, not yet executed
        self.awaiting = 0  # commands waiting for their answer (a GET that waits, HISTORY)
        self.log_reads = 0  # of those, HISTORY reads running
        self.buffered_input = 0  # bytes of unfinished requests the decoder holds
        self.tls = False
        self.closing = False  # no more requests are read; close once replies are flushed
        self.eof = False  # the client sent all it will send; close once everything is answered
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
        self.tls = transport.get_extra_info("sslcontext") is not None
        self.traffic.opened += 1
        self.broker.opened(self)

    def data_received(self, data: bytes) -> None:
        self.traffic.bytes_in += len(data)
        if self.closing:
            return
        if self._decoder is None:
            self._decoder, self.speaker = for_mode(sniff_mode(data[0]),
                                                   self.config.max_frame_bytes,
                                                   self.config.max_line_bytes)
        if isinstance(self._decoder, BinaryDecoder):
            self._decoder.bound(*self._frame_bound())
        self.broker.received(self, self._decoder.feed(data))

    def _frame_bound(self) -> tuple[int, str]:
        """The largest frame this client may send now, and the setting that says so: before
        AUTH (with a users file) a small one, so that clients nobody knows cannot fill the
        shared `max_buffered_input_bytes`."""
        config = self.config
        if config.users_file is not None and self.user is None:
            return (min(config.max_unauthenticated_frame_bytes, config.max_frame_bytes),
                    "max_unauthenticated_frame_bytes")
        return config.max_frame_bytes, "max_frame_bytes"

    def eof_received(self) -> bool:
        self.eof = True
        self.broker.sent_all(self)
        # Keep the sending side open for the replies still due; TLS cannot: its end of input
        # (close_notify) closes the connection (protocol.md section 9).
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._transport = None
        self.broker.closed(self)

    def pause_writing(self) -> None:
        # The client is not reading its replies: stop reading its requests until it does.
        self.hold_reading("replies")

    def resume_writing(self) -> None:
        self.release_reading("replies")
        self.broker.writable(self)

    @property
    def decoder_buffered_bytes(self) -> int:
        return 0 if self._decoder is None else self._decoder.buffered_bytes

    @property
    def unread_bytes(self) -> int:
        """Replies made for this client that it has not read yet (as far as the broker holds)."""
        written = 0 if self._transport is None else self._transport.get_write_buffer_size()
        return self.unsent_bytes + written

    def over_output(self) -> bool:
        """Too many replies wait to be read: execute nothing more for now."""
        return self.unread_bytes > self.config.write_buffer_high_bytes

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

    def queue_reply(self, data: bytes) -> None:
        """Account for a reply made in this round; `send` hands it on."""
        self.unsent_bytes += len(data)

    def send(self, number: int, replies: list[Out]) -> bool:
        """Send `replies` (bytes, and the rid of the request each answers or NOT_A_REPLY) once
        batch `number` is committed, in one write; True if they had to be held."""
        if not self._held and number <= self.broker.committed:
            self._write(replies[0][0] if len(replies) == 1 else b"".join(d for d, _ in replies))
            return False
        self._held.append(Held(number, replies))  # the round's list as it is: no copy
        self._held_replies += len(replies)
        if self._held_replies >= self.config.max_unconfirmed_replies:
            self.hold_reading("unconfirmed")
        return True

    def release(self, committed: int) -> bool:
        """Send the held replies whose batch is committed; True while some remain held."""
        held = self._held
        ready: list[bytes] = []
        while held and held[0].number <= committed:
            replies = held.popleft().replies
            self._held_replies -= len(replies)
            ready.extend(data for data, _ in replies)
        if ready:
            # One write for all of them: a commit often releases hundreds of pipelined replies,
            # and each write is a send system call.
            self._write(ready[0] if len(ready) == 1 else b"".join(ready))
        if self._held_replies < self.config.max_unconfirmed_replies // 2:
            self.release_reading("unconfirmed")
        self.close_if_done()
        return bool(held)

    def refuse(self, first: int, error: MQError, last: int | None = None) -> int:
        """Batches from `first` on (to `last`) will not be committed for now: what waits for
        them is sent as `error` instead (replies) or not at all (pushes and events), so nothing
        is confirmed that is not on disk. What waits for nothing, or for earlier batches, goes
        as it is; what waits for later ones, and all behind it, stays held.
        Returns how many replies were refused."""
        held, self._held = self._held, deque()
        self._held_replies = 0
        out: list[bytes] = []
        refused = 0
        for entry in held:
            if self._held or (last is not None and entry.number > last):
                self._held.append(entry)  # in order: nothing goes out before it
                self._held_replies += len(entry.replies)
                continue
            for data, rid in entry.replies:
                self.unsent_bytes -= len(data)
                if not 0 < first <= entry.number:
                    out.append(data)
                elif rid != NOT_A_REPLY:
                    out.append(self.speaker.error(rid, error))
                    refused += 1
        data = b"".join(out)
        self.unsent_bytes += len(data)
        self._write(data)  # one write, like every release
        self.close_if_done()
        return refused

    def _write(self, data: bytes) -> None:
        self.unsent_bytes -= len(data)
        if self._transport is not None:
            self.traffic.bytes_out += len(data)
            self._transport.write(data)

    @property
    def done(self) -> bool:
        """Nothing more is due to this client: it may be closed once its replies are out."""
        return self.closing or (self.eof and not self.awaiting and not self.backlog)

    def close_if_done(self) -> None:
        if self.done and not self._held and self._transport is not None:
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
