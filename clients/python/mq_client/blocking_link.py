"""The blocking client's link to the broker: one plain socket, no event loop.

Theory of operation: a call encodes its frames, then runs one loop over a selector that writes
whatever is left to send and reads whatever has arrived, until every reply it waits for is in.
Sending and reading together (rather than "send all, then read all") matters for
`publish_many`: a broker that pauses reading while its replies pile up would otherwise deadlock
against a client that is still sending. Replies are matched by `rid`; a reply nobody waits for
(left over from a call that timed out) is dropped.

The socket stays usable after a timeout only if every byte of the request went out; after a
timeout or interrupt mid-send the broker holds half a frame, so the connection is closed.

A lost connection is reported by what the caller may do next: `ConnectionLost` when no byte of
the call went out (a reconnecting client sends it on a new connection), `OutcomeUnknown` when
some did (it may or may not have run: protocol.md section 5). `check_alive` peeks, before a
call, for an end of stream that arrived while nobody was reading, so that a call is not sent
into a connection the broker already closed.

A call may bring a `Patience`: each time it has waited that long without a reply, it asks
whether to give the broker up (a cluster client whose map no longer names this broker for the
slot: the broker was paused past its lease, say). Giving up ends the connection as a loss does.

Heartbeats. After `hello`, a daemon thread keeps the session alive while the caller's thread is
busy elsewhere (a handler that runs for minutes) or waits in a long `get`. It shares the socket
under `_lock`: a call holds the lock while it sends (so a heartbeat frame never lands inside
one of its frames) and while it reads, but not while it waits; the thread takes it to send a
`heartbeat` when nothing went out for half of `heartbeat_s`. Heartbeat replies are discarded by
whichever thread reads them (their rids are kept in `heartbeat_rids`): the calling thread
during a call, the heartbeat thread between calls, so they never pile up unread.

`Client` (sync.py) is the public face: it builds requests with ops.py and parses the replies
this link hands back.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mq_client import ops
from mq_client.codec import FrameDecoder, encode_frame
from mq_client.errors import ConnectionLost, MQError, ProtocolError, clone_error, error_from_reply
from mq_client.request import Request, outcome_unknown
from mq_client.session import Session

# The logger keeps the name it had when this code lived in sync.py, so logging set up for
# "mq_client.sync" still sees heartbeat warnings and ignored pushes.
log = logging.getLogger("mq_client.sync")

READ_CHUNK_BYTES = 256 * 1024
# What a non-blocking socket raises when it cannot go on now; a TLS socket may also need to read
# before it can write, or the reverse (a TLS 1.3 session ticket arriving, say).
_NOT_NOW = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(frozen=True, slots=True)
class Patience:
    """While a call waits for replies: after `every_s` seconds without one, ask `give_up()`;
    True ends the connection as lost (the calls fail as `OutcomeUnknown`), False waits as long
    again."""

    every_s: float
    give_up: Callable[[], bool]


class BlockingLink:
    """One connected socket, shared by the calling thread and the heartbeat thread."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._events = selectors.EVENT_READ
        self._decoder = FrameDecoder()
        self._rids = itertools.count(1)
        self._closed: MQError | None = None
        self._lock = threading.Lock()  # socket I/O, the decoder and the fields below
        self._in_call = False  # a call is running: its thread reads the replies
        self._last_send_s = time.monotonic()
        self.heartbeat_rids: set[int] = set()
        """Rids of heartbeats sent whose replies are still to be read and discarded."""
        self._stop = threading.Event()
        self._heartbeats: threading.Thread | None = None
        self._session: Callable[[], Session | None] = lambda: None

    @property
    def closed(self) -> bool:
        """True once the connection is closed or lost."""
        return self._closed is not None

    @property
    def error(self) -> MQError | None:
        """Why the connection ended; None while it is open."""
        return self._closed

    def start_heartbeats(self, session: Callable[[], Session | None]) -> None:
        """Start the heartbeat thread, unless it already runs; it stops when `session()` is None."""
        if self._heartbeats is None:
            self._session = session
            self._heartbeats = threading.Thread(target=self._beat, name="mq-client-heartbeat", daemon=True)
            self._heartbeats.start()

    def stop_heartbeats(self) -> None:
        """Stop the heartbeat thread and wait for it (unless called from it)."""
        self._stop.set()
        if self._heartbeats is not None and self._heartbeats is not threading.current_thread():
            self._heartbeats.join()

    def exchange(
        self, requests: Sequence[Request[Any]], timeout_s: float | None, max_frame_bytes: int,
        patience: Patience | None = None,
    ) -> list[dict[str, Any]]:
        """Send every request and return their replies, in request order.

        `timeout_s` bounds, in seconds, how long the exchange may go without progress (None:
        forever); frames larger than `max_frame_bytes` are refused before any byte is sent;
        `patience` may give the broker up before that (see the module docstring).
        """
        if self._closed is not None:
            raise clone_error(self._closed)
        rids: list[int] = []
        outgoing: deque[memoryview] = deque()
        # Encode everything first: a frame that cannot be encoded fails before any byte is sent.
        for request in requests:
            rid = next(self._rids)
            frame = encode_frame(request.to_wire(rid), max_frame_bytes=max_frame_bytes)
            rids.append(rid)
            outgoing.append(memoryview(frame))
        replies: dict[int, dict[str, Any]] = {}
        unsent_bytes = sum(len(frame) for frame in outgoing)
        try:
            self._pump(outgoing, set(rids), replies, timeout_s, patience)
        except _RepliesLate:
            # Every byte went out, so the stream is intact: later calls drop the late replies.
            raise TimeoutError(f"no reply from the broker within {timeout_s} s") from None
        except ConnectionLost as exc:
            self.shut(exc)
            raise self._lost(requests, outgoing, unsent_bytes, exc) from exc
        except MQError as exc:
            self.shut(exc)
            raise
        except OSError as exc:
            if isinstance(exc, TimeoutError):  # mid-send: the broker holds half a frame
                self.shut(ConnectionLost("timed out in the middle of sending a request"))
                raise
            lost = ConnectionLost(f"connection lost: {exc}")
            self.shut(lost)
            raise self._lost(requests, outgoing, unsent_bytes, lost) from exc
        except BaseException:
            # An interrupt mid-send, or between a read and its decoding, leaves the stream out of
            # step: the connection cannot be used again.
            self.shut(ConnectionLost("the connection was abandoned in the middle of a call"))
            raise
        return [replies[rid] for rid in rids]

    def check_alive(self) -> None:
        """Notice, before a call, that the broker closed the connection while nobody read it,
        so that a reconnecting client sends the call on a new one rather than into this one."""
        with self._lock:
            if self._closed is not None:
                return
            try:
                # The raw socket's recv, also under TLS: only the end of the stream matters here.
                peeked = socket.socket.recv(self.sock, 1, socket.MSG_PEEK)
            except _NOT_NOW:
                return
            except OSError as exc:
                lost = ConnectionLost(f"connection lost: {exc}")
            else:
                if peeked:
                    return
                lost = ConnectionLost("the broker closed the connection")
        self.shut(lost)

    @staticmethod
    def _lost(
        requests: Sequence[Request[Any]], outgoing: deque[memoryview], unsent_bytes: int, lost: ConnectionLost
    ) -> ConnectionLost:
        """`lost` as it is if none of the requests' bytes went out, else `OutcomeUnknown`."""
        if sum(len(frame) for frame in outgoing) == unsent_bytes:
            return lost
        return outcome_unknown(requests, lost.message)

    def shut(self, reason: MQError) -> None:
        """Close the socket for good; later exchanges raise a copy of `reason`. Safe to repeat."""
        self._stop.set()
        with self._lock:  # not while the heartbeat thread is using the socket
            if self._closed is not None:
                return
            self._closed = reason
            self._selector.close()
            self.sock.close()

    # -- the calling thread -----------------------------------------------------------------

    def _pump(
        self,
        outgoing: deque[memoryview],
        wanted: set[int],
        replies: dict[int, dict[str, Any]],
        timeout_s: float | None,
        patience: Patience | None = None,
    ) -> None:
        # The lock is held from the first byte to the last one sent (no heartbeat frame may land
        # in the middle of ours), then only around each read, never while waiting for replies.
        self._lock.acquire()
        locked = True
        self._in_call = True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        check_at = None if patience is None else time.monotonic() + patience.every_s
        try:
            while outgoing or len(replies) < len(wanted):
                if locked and not outgoing:
                    self._lock.release()
                    locked = False
                self._want_write(bool(outgoing))
                ready = self._selector.select(_seconds_to(deadline, check_at))
                if not ready:
                    check_at = self._waited(bool(outgoing), deadline, timeout_s, patience, check_at)
                    continue
                mask = ready[0][1]
                progress = False
                if mask & selectors.EVENT_WRITE and outgoing:
                    progress = self._send_some(outgoing)
                if mask & selectors.EVENT_READ:
                    with contextlib.nullcontext() if locked else self._lock:
                        progress = self._receive_some(wanted, replies) or progress
                if progress and timeout_s is not None:
                    deadline = time.monotonic() + timeout_s
                if progress and patience is not None:
                    check_at = time.monotonic() + patience.every_s
        finally:
            if not locked:
                self._lock.acquire()
            self._in_call = False
            self._lock.release()

    @staticmethod
    def _waited(sending: bool, deadline: float | None, timeout_s: float | None, patience: Patience | None,
                check_at: float | None) -> float | None:
        """Nothing came before the first of `deadline` and `check_at`: raise if the deadline
        passed or `patience` gives the broker up; the next check's time."""
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            if sending:
                raise TimeoutError(f"could not send to the broker within {timeout_s} s")
            raise _RepliesLate
        if patience is None or check_at is None or now < check_at:
            return check_at  # woken a little early
        if patience.give_up():
            raise ConnectionLost("the broker stopped answering, and the map no longer names it for the slot")
        return time.monotonic() + patience.every_s

    def _want_write(self, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        if events != self._events:
            self._selector.modify(self.sock, events)
            self._events = events

    def _send_some(self, outgoing: deque[memoryview]) -> bool:
        """Send what the socket takes now; returns whether any byte went out."""
        try:
            sent = self.sock.send(outgoing[0])
        except _NOT_NOW:
            return False
        self._last_send_s = time.monotonic()
        outgoing[0] = outgoing[0][sent:]
        if not outgoing[0]:
            outgoing.popleft()
        return sent > 0

    def _receive_some(self, wanted: set[int], replies: dict[int, dict[str, Any]]) -> bool:
        """Read what has arrived; returns whether a wanted reply came. Call with `_lock` held."""
        try:
            data = self.sock.recv(READ_CHUNK_BYTES)
        except _NOT_NOW:
            return False
        if not data:
            raise ConnectionLost("the broker closed the connection")
        if isinstance(self.sock, ssl.SSLSocket):
            # TLS hands out one record per recv; what is left of it was read off the socket
            # already, so the selector would not wake for it.
            while pending := self.sock.pending():
                data += self.sock.recv(pending)
        before = len(replies)
        # feed(b"") again until it returns nothing: a bad frame behind good ones is only reported
        # by the next feed, and the reply we wait for may be that bad frame.
        frames = self._decoder.feed(data)
        while frames:
            for reply in frames:
                self._dispatch(reply, wanted, replies)
            frames = self._decoder.feed(b"")
        return len(replies) > before

    def _dispatch(self, reply: dict[str, Any], wanted: set[int], replies: dict[int, dict[str, Any]]) -> None:
        rid = reply.get("rid")
        if rid is None:
            if "push" in reply and "ok" not in reply:
                log.debug("mq client ignores a push frame: the blocking client does not subscribe")
                return
            # The broker could not read one of our requests and cannot say which: no reply we
            # wait for can be trusted to come, so the connection ends here.
            if reply.get("ok") is not False:
                raise ProtocolError(f"reply without rid: {reply!r}")
            raise error_from_reply(reply)
        if rid in wanted:
            replies[rid] = reply
        elif rid in self.heartbeat_rids:
            self.heartbeat_rids.discard(rid)
            if reply.get("ok") is not True:
                log.warning("mq heartbeat refused: %r", reply)
        if reply.get("fatal") is True:
            raise error_from_reply(reply)  # the broker closes after a fatal reply

    # -- the heartbeat thread ---------------------------------------------------------------

    def _beat(self) -> None:
        """Body of the heartbeat thread: a heartbeat when due, and drain replies between calls."""
        with selectors.DefaultSelector() as selector:  # its own: the caller's is not thread-safe
            with self._lock:
                if self._closed is not None:
                    return
                selector.register(self.sock, selectors.EVENT_READ)
            wait_s = 0.0
            while not self._stop.wait(wait_s):
                with self._lock:
                    session = self._session()
                    if self._closed is not None or session is None:
                        return
                    interval_s = session.heartbeat_s / 2
                    wait_s = self._last_send_s + interval_s - time.monotonic()
                    if wait_s > 0:
                        continue
                    wait_s = interval_s
                    try:
                        self._send_heartbeat(selector, session.dead_after_s)
                        if not self._in_call:  # nobody else reads now: take the replies out
                            while selector.select(0):
                                self._receive_some(set(), {})
                    except (OSError, MQError) as exc:
                        # The connection is broken. Shutting the socket down (not closing it: the
                        # caller's thread may be in select on it) makes its next call fail.
                        log.warning("mq heartbeat failed, the connection is lost: %s", exc)
                        with contextlib.suppress(OSError):
                            self.sock.shutdown(socket.SHUT_RDWR)
                        return

    def _send_heartbeat(self, selector: selectors.BaseSelector, timeout_s: float) -> None:
        """Send one whole `heartbeat` frame within `timeout_s` seconds. Call with `_lock` held."""
        rid = next(self._rids)
        frame = memoryview(encode_frame(ops.heartbeat().to_wire(rid)))
        self.heartbeat_rids.add(rid)
        deadline = time.monotonic() + timeout_s
        while frame:
            try:
                frame = frame[self.sock.send(frame) :]
            except _NOT_NOW:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0:
                    raise TimeoutError("could not send a heartbeat") from None
                selector.modify(self.sock, selectors.EVENT_WRITE)
                try:
                    selector.select(remaining_s)
                finally:
                    selector.modify(self.sock, selectors.EVENT_READ)
        self._last_send_s = time.monotonic()


class _RepliesLate(Exception):
    """Internal: the timeout passed after the whole request was sent."""


def _seconds_to(*moments: float | None) -> float | None:
    """Seconds from now to the first of `moments` (monotonic; None: none), at least 0."""
    due = [m for m in moments if m is not None]
    return None if not due else max(0.0, min(due) - time.monotonic())
