"""The blocking client's links to the brokers of a cluster (protocol.md 11), behind the face of
one `BlockingLink`, so `Client` keeps its API: `Client.connect("mq://h1:p1,h2:p2")`.

Theory of operation: the routing rules are cluster_routing.py's, the ones the asyncio client's
cluster_link.py follows. The link reads the slot map from a seed (`cluster`), and sends each
request to the broker of its slot on one `BlockingLink` per broker, dialled when first needed
(auth first, then `hello` with the session's token if there is one). An exchange of several
requests (a `Batch`: `publish_many`, `ack_many` split per slot by `Client`) goes pipelined to
one broker when they all belong there; a reply that says MOVED, TRYAGAIN or
STORE_UNAVAILABLE, or a lost connection, sends that request again alone, routed as
`cluster_routing.Attempts` says (waits are `time.sleep` in the calling thread), until
`takeover_timeout_s`; then the error is raised. As in the asyncio client, a request resent after
a lost connection may have run once already (a `pub` carries an automatic `dedup_id`), and one
that is not safe to send again raises `OutcomeUnknown`. A request its broker leaves without a
reply for its patience (`cluster_routing.OwnerChecks`) reads the map from another broker, in
the waiting call (`blocking_link.Patience`): if the slot has another owner now, the stalled
broker's link is dropped and the request routed again; else it waits on.

A few requests are not about one slot: `hello` goes to one broker and then, with the token it
gave, to every other linked broker (a clustered broker adopts a token it does not know), so
the session is one name everywhere; `quit` goes to every broker; a `join` is remembered and
sent on the link of its queue's broker before the first request for that queue there, so a
consumer follows its queue when it moves. Heartbeats run on every link (`start_heartbeats`).
The client's own `reconnect` does not apply: a lost broker is dialled again by the routing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from mq_client import admin_ops, ops
from mq_client.blocking_link import BlockingLink, Patience
from mq_client.cluster_routing import (
    DEFAULT_OWNER_CHECK_S,
    FOLLOWED,
    MAP_READ_TIMEOUT_S,
    Attempts,
    DedupIds,
    OwnerChecks,
    SlotMap,
    may_resend,
    slot_of_request,
)
from mq_client.errors import ConnectionLost, Moved, MQError, clone_error, error_from_reply
from mq_client.request import Request, check_reply
from mq_client.session import Session
from mq_client.url import Address

log = logging.getLogger(__name__)

Dial = Callable[[Address, float], BlockingLink]
"""Opens an authenticated link to one broker within the given seconds."""


class BlockingClusterLink:
    """One `BlockingLink` per broker of a cluster, routed by slot; used as the `Client`'s link."""

    def __init__(self, seeds: Sequence[Address], dial: Dial, takeover_timeout_s: float,
                 sleep: Callable[[float], None] = time.sleep, owner_check_s: float = DEFAULT_OWNER_CHECK_S) -> None:
        self._seeds = list(seeds)
        self._dial = dial
        self.takeover_timeout_s = takeover_timeout_s
        self._checks = OwnerChecks(owner_check_s)
        self._sleep = sleep
        self.map = SlotMap()
        self._links: dict[str, BlockingLink] = {}  # host:port -> its link
        self._with_dedup = DedupIds()
        self._session: Session | None = None  # the one every link says hello with
        self._heartbeats: Callable[[], Session | None] | None = None
        self._joins: dict[str, Request[dict[str, Any]]] = {}  # queue -> its join
        self._joined: set[tuple[str, str]] = set()  # (host:port, queue) joined there
        self._closed: MQError | None = None
        self._max_frame_bytes = 0

    # -- the face of a BlockingLink, as Client uses it --------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def error(self) -> MQError | None:
        return self._closed

    def start(self, max_frame_bytes: int) -> None:
        """Reach a seed and read the map; `ConnectionLost` if no seed answers."""
        self._max_frame_bytes = max_frame_bytes
        self.refresh()

    def start_heartbeats(self, session: Callable[[], Session | None]) -> None:
        """Heartbeats on every link, now and on the links made later."""
        self._heartbeats = session
        for link in self._links.values():
            link.start_heartbeats(session)

    def stop_heartbeats(self) -> None:
        for link in self._links.values():
            link.stop_heartbeats()

    def check_alive(self) -> None:
        """Nothing to do: a link found lost is dialled again when its broker is next needed."""

    def shut(self, reason: MQError) -> None:
        if self._closed is None:
            self._closed = reason
        links, self._links = list(self._links.values()), {}
        for link in links:
            link.shut(reason)

    def exchange(self, requests: Sequence[Request[Any]], timeout_s: float | None,
                 max_frame_bytes: int) -> list[dict[str, Any]]:
        """Every request's reply, in request order, each from the broker of its slot."""
        if self._closed is not None:
            raise clone_error(self._closed)
        self._max_frame_bytes = max_frame_bytes
        sent = [self._with_dedup(r) for r in requests]
        op = sent[0].fields["op"] if len(sent) == 1 else None
        if op == "hello":
            return [self._hello(sent[0], timeout_s)]
        if op == "quit":
            return self._everywhere(sent[0], timeout_s)
        if op in ("join", "leave"):
            self._note_membership(sent[0])
        replies = self._pipelined(sent, timeout_s)
        return [reply if reply is not None and _followed(reply) is None
                else self._routed(request, timeout_s)
                for request, reply in zip(sent, replies, strict=True)]

    # -- routing ----------------------------------------------------------------------------

    def _pipelined(self, requests: list[Request[Any]], timeout_s: float | None,
                   ) -> list[dict[str, Any] | None]:
        """The replies of requests that all go to one broker, sent there at once; None for
        each to route alone (they go to several brokers, or the link was lost)."""
        slots = {slot_of_request(r.fields) for r in requests}
        addrs = {self.map.addr(s) for s in slots}
        if len(requests) == 1 or len(addrs) != 1 or None in addrs:
            return [None] * len(requests)
        (addr,) = addrs
        assert addr is not None
        try:
            link = self._link(addr)
            for request in requests:
                self._rejoin(link, addr, request, timeout_s)
            patience = self._patience(slots, addr, requests)
            return list(link.exchange(requests, timeout_s, self._max_frame_bytes, patience))
        except FOLLOWED as e:
            if isinstance(e, ConnectionLost):
                self._drop(addr)
            if not may_resend(e):
                raise
            return [None] * len(requests)

    def _routed(self, request: Request[Any], timeout_s: float | None) -> dict[str, Any]:
        """`request`'s reply from the broker of its slot (any broker for no slot), following
        MOVED and retrying as cluster_routing.Attempts says."""
        slot = slot_of_request(request.fields)
        attempts = Attempts(self.takeover_timeout_s, time.monotonic())
        while True:
            if self._closed is not None:
                raise clone_error(self._closed)
            addr = self.map.addr(slot) or self._any()
            try:
                link = self._link(addr)
                self._rejoin(link, addr, request, timeout_s)
                patience = self._patience({slot}, addr, [request])
                (reply,) = link.exchange([request], timeout_s, self._max_frame_bytes, patience)
                error = _followed(reply)
                if error is None:
                    self._joined_at(addr, request, reply)
                    return reply
                raise error
            except FOLLOWED as e:
                if isinstance(e, Moved):
                    self.map.moved(e)
                elif isinstance(e, ConnectionLost):
                    self._drop(addr)
                step = attempts.after(e, time.monotonic())
                if step.wait_s:
                    self._sleep(step.wait_s)
                if step.refresh:
                    self._refresh_quietly()

    def _patience(self, slots: set[int | None], addr: str, requests: Sequence[Request[Any]]) -> Patience | None:
        """How the requests, all sent to `addr`, watch for a broker that lost their slots."""
        known = {s for s in slots if s is not None}
        if not known:
            return None  # about no queue: any broker serves it, none is the wrong one
        every_s = max(self._checks.patience_s(r.fields) for r in requests)
        return Patience(every_s, lambda: self._owner_moved(known, addr))

    def _owner_moved(self, slots: set[int], addr: str) -> bool:
        """Whether the map, read from a broker other than `addr` unless a read was just made,
        gives one of `slots` to another broker than `addr`."""
        if self._checks.need_read(time.monotonic()):
            self._refresh_quietly(avoid=addr)
        moved = self._checks.moved(self.map, slots, addr)
        if moved:
            log.warning("mq broker %s has not answered and the map gives its slots to others: leaving it", addr)
        return moved

    def _any(self) -> str:
        if self._links:
            return next(iter(self._links))
        seed = self._seeds[0]
        return f"{seed.host}:{seed.port}"

    def _link(self, addr: str, timeout_s: float | None = None) -> BlockingLink:
        link = self._links.get(addr)
        if link is not None and not link.closed:
            return link
        self._drop(addr)
        link = self._dial(self._address(addr), timeout_s or self.takeover_timeout_s)
        self._links[addr] = link
        if self._session is not None:  # the same session on every broker (the token is adopted)
            self._call(link, self._hello_again(self._session), None)
        if self._heartbeats is not None:
            link.start_heartbeats(self._heartbeats)
        return link

    def _drop(self, addr: str) -> None:
        link = self._links.pop(addr, None)
        if link is not None:
            link.shut(ConnectionLost(f"the link to {addr} was dropped"))
        self._joined = {j for j in self._joined if j[0] != addr}

    def _address(self, addr: str) -> Address:
        host, _, port = addr.rpartition(":")
        seed = self._seeds[0]
        return Address(host, int(port), seed.tls, seed.user, seed.secret)

    def _call(self, link: BlockingLink, request: Request[Any], timeout_s: float | None) -> Any:
        (reply,) = link.exchange([request], timeout_s, self._max_frame_bytes)
        return request.parse(check_reply(reply))

    # -- sessions and groups ------------------------------------------------------------------

    @staticmethod
    def _hello_again(session: Session) -> Request[Session]:
        return ops.hello(session.consumer, session.heartbeat_s, session.token)

    def _hello(self, request: Request[Session], timeout_s: float | None) -> dict[str, Any]:
        """`hello` at one broker, then with its token at every other linked one."""
        reply = self._routed(request, timeout_s)
        if reply.get("ok") is not True:
            return reply
        session: Session = request.parse(reply)
        if self._session is not None and self._session.consumer != session.consumer:
            self._joins.clear()
            self._joined.clear()
        self._session = session
        first = self._any()
        for addr, link in list(self._links.items()):
            if addr != first:
                self._call(link, self._hello_again(session), timeout_s)
        return reply

    def _everywhere(self, request: Request[Any], timeout_s: float | None) -> list[dict[str, Any]]:
        """`request` (a `quit`) on every link, each on its own (a lost one is passed over);
        the first reply."""
        replies = []
        for addr, link in list(self._links.items()):
            try:
                replies += link.exchange([request], timeout_s, self._max_frame_bytes)
            except (MQError, OSError) as e:
                log.debug("mq %s not said to %s: %s", request.fields["op"], addr, e)
        return replies[:1] or [{"ok": True}]

    def _note_membership(self, request: Request[Any]) -> None:
        queue = str(request.fields["queue"])
        self._joined = {j for j in self._joined if j[1] != queue}
        if request.fields["op"] == "join":
            self._joins[queue] = request
        else:
            self._joins.pop(queue, None)

    def _rejoin(self, link: BlockingLink, addr: str, request: Request[Any],
                timeout_s: float | None) -> None:
        """Join the group of the request's queue on this broker first, if the client is in one."""
        queue = request.fields.get("queue")
        join = self._joins.get(queue) if isinstance(queue, str) else None
        if join is None or (addr, queue) in self._joined or request is join:
            return
        self._call(link, join, timeout_s)
        self._joined.add((addr, str(queue)))

    def _joined_at(self, addr: str, request: Request[Any], reply: dict[str, Any]) -> None:
        if request.fields.get("op") == "join" and reply.get("ok") is True:
            self._joined.add((addr, str(request.fields["queue"])))

    # -- the map ------------------------------------------------------------------------------

    def refresh(self, avoid: str | None = None) -> None:
        """Read the map from a broker already linked, else from the seeds in turn (never from
        `avoid`)."""
        candidates = list(self._links) + [f"{s.host}:{s.port}" for s in self._seeds]
        last: MQError | None = None
        for addr in dict.fromkeys(candidates):
            if addr == avoid:
                continue
            try:
                link = self._link(addr, MAP_READ_TIMEOUT_S)
                self.map.learn(self._call(link, admin_ops.cluster(), MAP_READ_TIMEOUT_S))
                self._checks.map_read(time.monotonic())
                return
            except (MQError, TimeoutError) as e:
                if not isinstance(e, MQError) or isinstance(e, ConnectionLost):
                    self._drop(addr)
                last = e if isinstance(e, MQError) else ConnectionLost(f"{addr} did not answer")
        raise ConnectionLost(f"no broker of the cluster answered ({last})")

    def _refresh_quietly(self, avoid: str | None = None) -> None:
        try:
            self.refresh(avoid)
        except MQError as e:
            log.debug("mq cluster map not refreshed: %s", e)


def _followed(reply: dict[str, Any]) -> MQError | None:
    """The error of a reply that routing handles (MOVED, TRYAGAIN, STORE_UNAVAILABLE); None
    for a reply to hand back (a success, or another error)."""
    if reply.get("ok") is not False:
        return None
    error = error_from_reply(reply)
    return error if isinstance(error, FOLLOWED) else None
