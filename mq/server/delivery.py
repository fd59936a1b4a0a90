"""Handing messages to consumers: the only caller of `core.lease`.

Three ways ask for messages, and all three lease here, under one size limit for what one reply
or push may carry (`max_reply_bytes`):
- a GET served at once (`take`);
- a GET that waits (`wait`): parked until its queue gains messages or its `wait_s` passes;
- a subscription (SUB): a standing GET with credit, topped up to `prefetch` unacked messages
  whenever its queue gains messages or its acks free credit.

`serve` is called with the queues that gained messages; it returns what to send rather than
sending it, so the caller encodes for each connection's mode and queues the bytes behind the
commit of the leases they report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from mq.codec.commands import Get
from mq.core.broker import Broker
from mq.core.model import Delivery as CoreDelivery
from mq.errors import Code, MQError
from mq.server.waiters import Waiter, Waiters

Wire = dict[str, Any]


class Consumer(Protocol):
    @property
    def holder(self) -> str: ...

    def over_output(self) -> bool:
        """Too many replies wait to be read by this client."""
        ...


C = TypeVar("C", bound=Consumer)


@dataclass(slots=True, eq=False)
class Subscription(Generic[C]):
    conn: C
    prefetch: int
    lease_s: float | None


@dataclass(frozen=True, slots=True)
class Answer(Generic[C]):
    """A waiting GET served: reply to `get` on `conn` with `msgs` (empty: its wait ran out)."""

    conn: C
    get: Get
    msgs: list[Wire]


@dataclass(frozen=True, slots=True)
class Push(Generic[C]):
    """Messages leased to a subscription of `conn` on `queue`."""

    conn: C
    queue: str
    msgs: list[Wire]


class Delivery(Generic[C]):
    def __init__(self, core: Broker, max_reply_bytes: int, max_waiting_gets: int) -> None:
        self.core = core
        self.max_reply_bytes = max_reply_bytes
        self.max_waiting_gets = max_waiting_gets
        self.waiters: Waiters[C] = Waiters()
        self._waits_of: dict[C, list[Waiter[C]]] = {}
        self._subs: dict[str, list[Subscription[C]]] = {}
        self._subscribed: dict[C, set[str]] = {}  # connection -> queues it subscribes to
        self._starved: set[C] = set()  # connections whose subscriptions were skipped

    # --- the one lease ------------------------------------------------------------------------

    def take(self, queue: str, holder: str, lease_s: float | None, max_count: int) -> list[Wire]:
        """Lease up to `max_count` ready messages of `queue` now; [] when there are none."""
        return [_wire(d) for d in self.core.lease(queue, holder, lease_s, max_count,
                                                  self.max_reply_bytes)]

    # --- GETs that wait -----------------------------------------------------------------------

    def wait(self, conn: C, get: Get, now: float, min_wait_s: float = 0.0) -> None:
        """Park `get` until its queue gains messages or `get.wait_s` (at least `min_wait_s`)
        passes."""
        waits = [w for w in self._waits_of.get(conn, ()) if not w.done]
        if len(waits) >= self.max_waiting_gets:
            raise MQError(Code.BAD_REQUEST, f"{len(waits)} GETs of this connection are waiting "
                          f"already (max_waiting_gets={self.max_waiting_gets}); wait for their "
                          "replies first")
        waiter = Waiter(conn, get, now + max(get.wait_s, min_wait_s))
        self.waiters.park(waiter)
        self._waits_of[conn] = [*waits, waiter]

    def waiting(self) -> int:
        """How many GETs wait now, of all connections."""
        return sum(1 for waits in self._waits_of.values() for w in waits if not w.done)

    def expired(self, now: float) -> list[Answer[C]]:
        """Waiting GETs whose time ran out, answered empty."""
        return [Answer(w.conn, w.command, []) for w in self.waiters.expired(now)]

    def end_waits(self, conn: C) -> list[Answer[C]]:
        """The waiting GETs of `conn`, answered empty now."""
        answers = []
        for waiter in self._waits_of.pop(conn, ()):
            if not waiter.done:
                self.waiters.finish(waiter)
                answers.append(Answer(conn, waiter.command, []))
        return answers

    def cancel_all(self) -> list[Answer[C]]:
        """Every waiting GET, taken out of line (the broker is shutting down)."""
        return [answer for conn in list(self._waits_of) for answer in self.end_waits(conn)]

    def next_deadline(self) -> float | None:
        return self.waiters.next_deadline()

    # --- subscriptions ------------------------------------------------------------------------

    def subscribe(self, conn: C, queue: str, prefetch: int, lease_s: float | None) -> None:
        self.unsubscribe(conn, queue)
        self._subs.setdefault(queue, []).append(Subscription(conn, prefetch, lease_s))
        self._subscribed.setdefault(conn, set()).add(queue)
        self.core.wake(queue)  # serve it what is ready already

    def unsubscribe(self, conn: C, queue: str) -> None:
        subs = [s for s in self._subs.get(queue, []) if s.conn is not conn]
        if subs:
            self._subs[queue] = subs
        else:
            self._subs.pop(queue, None)
        queues = self._subscribed.get(conn)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribed[conn]

    def subscribed_to(self, conn: C) -> list[str]:
        """The queues `conn` subscribes to."""
        return sorted(self._subscribed.get(conn, ()))

    def resume(self, conn: C) -> bool:
        """`conn` reads its replies again: the subscriptions skipped while it did not may be
        topped up. True when there were any (their queues are woken)."""
        if conn not in self._starved:
            return False  # acks already wake the queue when they free credit
        self._starved.discard(conn)
        for queue in self._subscribed.get(conn, ()):
            self.core.wake(queue)
        return True

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    # --- serving ------------------------------------------------------------------------------

    def serve(self, queues: Iterable[str]) -> tuple[list[Answer[C]], list[Push[C]]]:
        """Lease to the waiting GETs, then the subscriptions, of `queues` that gained messages."""
        answers: list[Answer[C]] = []
        pushes: list[Push[C]] = []
        for queue in queues:
            self._serve_waiters(queue, answers)
            self._fill_subscriptions(queue, pushes)
        return answers, pushes

    def _serve_waiters(self, queue: str, answers: list[Answer[C]]) -> None:
        # Longest waiting first; with a consumer group a waiter may be unable to take what
        # another can, so each one is asked in turn.
        for waiter in self.waiters.live(queue):
            if self.core.ready_count(queue) == 0:
                break
            get = waiter.command
            msgs = self.take(queue, waiter.conn.holder, get.lease_s, get.max)
            if msgs:
                self.waiters.finish(waiter)
                answers.append(Answer(waiter.conn, get, msgs))

    def _fill_subscriptions(self, queue: str, pushes: list[Push[C]]) -> None:
        subs = self._subs.get(queue)
        if not subs:
            return
        for sub in list(subs):  # in turn, so subscribers share a busy queue
            if sub.conn.over_output():
                self._starved.add(sub.conn)  # resumed once it reads what it has
                continue  # it does not read what it has: more would only pile up here
            credit = sub.prefetch - self.core.held_count(queue, sub.conn.holder)
            if credit > 0:
                msgs = self.take(queue, sub.conn.holder, sub.lease_s, credit)
                if msgs:
                    pushes.append(Push(sub.conn, queue, msgs))
        subs.append(subs.pop(0))

    def drop_queue(self, queue: str) -> tuple[list[Answer[C]], list[C]]:
        """`queue` moved to another broker of the cluster: its waiting GETs are answered empty
        now, and its subscriptions end. Returns those answers and the connections that were
        subscribed (to be told where it went)."""
        answers = []
        for waiter in self.waiters.live(queue):
            self.waiters.finish(waiter)
            answers.append(Answer(waiter.conn, waiter.command, []))
        subs = self._subs.pop(queue, [])
        for sub in subs:
            queues = self._subscribed.get(sub.conn)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribed[sub.conn]
        return answers, [sub.conn for sub in subs]

    # --- connections --------------------------------------------------------------------------

    def forget(self, conn: C) -> None:
        """`conn` is gone: its waiting GETs and its subscriptions end."""
        self.end_waits(conn)
        self._starved.discard(conn)
        for queue in list(self._subscribed.get(conn, ())):
            self.unsubscribe(conn, queue)


def _wire(d: CoreDelivery) -> Wire:
    """The message map of protocol.md 2.3, for the delivery being made now; `headers` only
    when it has some, so a message without costs no byte more on the wire."""
    m: Wire = {"receipt": f"{d.msg_id}.{d.delivery}", "msg_id": d.msg_id, "queue": d.queue,
               "deliveries": d.delivery, "body": d.body, "key": d.key,
               "published_at": d.published_at, "priority": d.priority}
    if d.headers is not None:
        m["headers"] = d.headers
    return m
