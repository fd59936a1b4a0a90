"""The asyncio client's links to the brokers of a cluster (protocol.md 11), behind the face of
one `Link`, so `AsyncClient` keeps its API.

Theory of operation. The client starts from a seed list, asks one of them for the slot map
(`cluster`) and keeps it: slot -> the address of its broker. Each request goes to the broker
of its slot; a request about no queue goes to any broker. One `Link` (one connection) per
broker, made when first needed (one dial at a time per broker, so concurrent first requests
share it), without reconnect of its own: a lost broker's link is dropped and made again if the
map still names it. MOVED, TRYAGAIN, STORE_UNAVAILABLE and a lost connection are followed and
retried as cluster_routing.py says, which the blocking client's links follow too.

  - A request at a broker that has not answered it for its patience (`owner_check_s` beyond
    what it may take by itself, cluster_routing.OwnerChecks) makes the client read the map from
    another broker: a broker paused past its etcd lease no longer owns anything, so once the
    map gives the slot to another broker, the link to the stalled one is dropped (aborted, no
    goodbye) and what was in flight there is resent to the new owner when that is safe. A
    request at a broker that still owns its slot keeps waiting. One timer per request does
    the watching (`_OwnerWatch`), so a prompt reply costs no task.

  - Resending after a lost connection may repeat a request that took effect: a `pub` carries
    an automatic `dedup_id` (`<client uuid>:<n>`), so a publish is stored once within its
    queue's dedup window; a `get` may lease a message whose delivery was lost (it comes back
    when that lease ends); an `ack` may answer LEASE_LOST for one already acked.
  - A consumer session: `hello` on one broker gives the token; every other link says `hello`
    with that token (the broker adopts it), so the holder of the leases is the same name on
    every broker. A group `join` is remembered and sent on the link of its queue's broker
    before the first request for that queue there, so a consumer follows its queue when it
    moves.
  - A batch ack is sent as one request per slot.
  - A subscription goes to its queue's broker; when the queue moves (the broker's `moved`
    push) or that broker is lost (its link dropped, a stalled one's too), the client
    subscribes again at the new one, with the same retries, keeping what it had received. A
    monitor stays on one broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from mq_client import admin_ops
from mq_client.cluster_routing import (
    DEFAULT_OWNER_CHECK_S,
    DEFAULT_TAKEOVER_TIMEOUT_S,
    FOLLOWED,
    MAP_READ_TIMEOUT_S,
    Attempts,
    DedupIds,
    OwnerChecks,
    SlotMap,
    per_slot,
    slot_of_request,
)
from mq_client.connection import Connection
from mq_client.errors import ConnectionLost, Moved, MQError
from mq_client.link import Link
from mq_client.push import PushRouter, Subscription
from mq_client.request import Request
from mq_client.session import Session
from mq_client.slots import slot_of
from mq_client.url import Address

T = TypeVar("T")
log = logging.getLogger(__name__)

Dial = Callable[[Address], Awaitable[Connection]]


class ClusterLink:
    def __init__(self, seeds: Sequence[Address], dial: Dial, takeover_timeout_s: float = DEFAULT_TAKEOVER_TIMEOUT_S,
                 max_frame_bytes: int = 0, owner_check_s: float = DEFAULT_OWNER_CHECK_S) -> None:
        self._seeds = list(seeds)
        self._dial = dial
        self.takeover_timeout_s = takeover_timeout_s
        self._checks = OwnerChecks(owner_check_s)
        self._map_read: asyncio.Task[None] | None = None  # the one shared by owner checks
        self.max_frame_bytes = max_frame_bytes
        self._links: dict[str, Link] = {}  # host:port -> its link
        self._dialing: dict[str, asyncio.Task[Link]] = {}  # host:port -> its link being made
        self.map = SlotMap()
        self.session: Session | None = None
        self._heartbeat_s: float | None = None
        self._joins: dict[str, Request[dict[str, Any]]] = {}  # queue -> its join
        self._joined: set[tuple[str, str]] = set()  # (host:port, queue) joined there
        self._with_dedup = DedupIds()
        self.pushes = PushRouter(reconnect=False)  # for the API; each link routes its own
        self.reconnects = 0
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()  # links being closed, subscriptions moving

    # -- what AsyncClient asks of a link ----------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def will_reconnect(self) -> bool:
        return not self._closed

    async def start(self) -> None:
        """Reach a seed and read the map; `ConnectionLost` if no seed answers."""
        await self.refresh()

    def call(self, request: Request[T]) -> Awaitable[T]:
        return self._routed(self._with_dedup(request), Link.call)

    async def call_all(self, requests: Sequence[Request[T]]) -> list[T]:
        """A batch's requests, each sent to its slot's broker (a batch ack split per slot)."""
        out: list[T] = []
        for request in requests:
            for part in per_slot(request):
                out.append(await self.call(part))
        return out

    async def hello(self, consumer: str, heartbeat_s: float | None) -> Session:
        self._heartbeat_s = heartbeat_s
        if self.session is not None and self.session.consumer != consumer:
            self.session = None
        link = await self._link(self._any())
        link.session = self.session
        self.session = await link.hello(consumer, heartbeat_s)
        for other in list(self._links.values()):
            if other is not link:
                other.session = self.session
                await other.hello(consumer, heartbeat_s)
        return self.session

    async def join(self, request: Request[dict[str, Any]]) -> dict[str, Any]:
        queue = request.fields["queue"]
        self._joins[queue] = request
        self._joined = {j for j in self._joined if j[1] != queue}
        return await self._routed(request, Link.join)

    async def leave(self, request: Request[None]) -> None:
        queue = request.fields["queue"]
        self._joins.pop(queue, None)
        self._joined = {j for j in self._joined if j[1] != queue}
        await self._routed(request, Link.leave)

    async def owner_link(self, queue: str | None) -> Link:
        """The link to the broker of `queue`'s slot now (for a subscription; a monitor of every
        queue watches one broker, which shows the queues it serves)."""
        addr = self.map.addr(slot_of(queue)) if queue is not None else None
        return await self._link(addr or self._any())

    async def close(self) -> None:
        self._closed = True
        for dialing in self._dialing.values():
            dialing.cancel()
        if self._map_read is not None:
            self._map_read.cancel()
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), *self._closing, return_exceptions=True)

    # -- routing ----------------------------------------------------------------------------

    async def _routed(self, request: Request[T], send: Callable[[Link, Request[T]], Awaitable[T]]) -> T:
        async def attempt(addr: str) -> T:
            link = await self._link(addr)
            await self._rejoin(link, addr, request)
            result = await send(link, request)
            if request.fields.get("op") == "join":
                self._joined.add((addr, str(request.fields["queue"])))
            return result

        return await self._at_owner(slot_of_request(request.fields), attempt, request.fields)

    async def _at_owner(self, slot: int | None, attempt: Callable[[str], Awaitable[T]],
                        fields: dict[str, Any]) -> T:
        """`attempt` (of the request of `fields`) at the broker that owns `slot` (any broker for
        None), following MOVED and retrying TRYAGAIN, an unavailable store or a lost broker
        (cluster_routing.Attempts), and leaving a stalled broker that lost the slot
        (cluster_routing.OwnerChecks)."""
        loop = asyncio.get_running_loop()
        attempts = Attempts(self.takeover_timeout_s, loop.time())
        while True:
            if self._closed:
                raise ConnectionLost("the client was closed")
            addr = self.map.addr(slot) or self._any()
            watch = None if slot is None else _OwnerWatch(self, slot, addr, self._checks.patience_s(fields))
            try:
                return await attempt(addr)
            except FOLLOWED as e:
                if isinstance(e, Moved):
                    self.map.moved(e)
                elif isinstance(e, ConnectionLost):
                    self._drop(addr)
                step = attempts.after(e, loop.time())
                if step.wait_s:
                    await asyncio.sleep(step.wait_s)
                if step.refresh:
                    await self._refresh_quietly()
            finally:
                if watch is not None:
                    watch.stop()

    async def owner_moved(self, slot: int, addr: str) -> bool:
        """Whether the map, read from a broker other than `addr` unless a read was just made,
        gives `slot` to another broker than `addr`."""
        if self._checks.need_read(asyncio.get_running_loop().time()):
            if self._map_read is None or self._map_read.done():
                self._map_read = asyncio.create_task(self._refresh_quietly(avoid=addr))
            await asyncio.shield(self._map_read)
        return self._checks.moved(self.map, {slot}, addr)

    def leave_stalled(self, addr: str) -> None:
        """Drop the link to `addr`, which stopped answering and no longer owns what it waits on."""
        if addr in self._links:
            log.warning("mq broker %s has not answered and the map gives its slots to others: leaving it", addr)
        self._drop(addr)

    async def _rejoin(self, link: Link, addr: str, request: Request[Any]) -> None:
        """Join the group of the request's queue on this broker first, if the client is in one."""
        queue = request.fields.get("queue")
        join = self._joins.get(queue) if isinstance(queue, str) else None
        if join is None or (addr, queue) in self._joined or request is join:
            return
        await link.join(join)
        self._joined.add((addr, str(queue)))

    def _any(self) -> str:
        if self._links:
            return next(iter(self._links))
        seed = self._seeds[0]
        return f"{seed.host}:{seed.port}"

    async def _link(self, addr: str) -> Link:
        link = self._links.get(addr)
        if link is not None and not link.closed:
            return link
        # One dial per broker at a time: two links to one broker would split a consumer's
        # subscription (and its leases) from its acks.
        dialing = self._dialing.get(addr)
        if dialing is None:
            dialing = self._dialing[addr] = asyncio.create_task(self._new_link(addr))
            dialing.add_done_callback(lambda done: self._dialed(addr, done))
        return await asyncio.shield(dialing)

    def _dialed(self, addr: str, done: asyncio.Task[Link]) -> None:
        if self._dialing.get(addr) is done:
            del self._dialing[addr]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone

    async def _new_link(self, addr: str) -> Link:
        self._drop(addr)
        conn = await self._dial(self._address(addr))
        link = Link(conn)
        link.pushes.on_moved = self._follow
        self._links[addr] = link
        if self.session is not None:  # the same session on every broker (the token is adopted)
            link.session = self.session
            await link.hello(self.session.consumer, self._heartbeat_s)
            self.reconnects += 1
        return link

    def _follow(self, sub: Subscription) -> None:
        task = asyncio.create_task(self._resubscribe(sub))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def subscribe(self, queue: str, prefetch: int | None, lease_s: float | None) -> Subscription:
        """A subscription at `queue`'s broker, which follows the queue when it moves."""
        sub = Subscription(queue, prefetch, lease_s, self.pushes, self.call)
        await self._place(sub)
        return sub

    async def _resubscribe(self, sub: Subscription) -> None:
        try:
            await self._place(sub)
        except MQError as e:
            sub.end(e)
        except ValueError as e:  # the new broker's link has this queue's subscription already
            sub.end(ConnectionLost(str(e)))

    async def _place(self, sub: Subscription) -> None:
        """Subscribe `sub` at its queue's broker now, retrying as a request does."""

        async def attempt(addr: str) -> None:
            link = await self._link(addr)
            link.pushes.add(sub)
            sub.move(link.pushes, link.call)
            try:
                await link.call(sub.request())
            except BaseException:
                link.pushes.remove(sub)
                raise

        await self._at_owner(slot_of(sub.queue), attempt, sub.request().fields)

    def _drop(self, addr: str) -> None:
        link = self._links.pop(addr, None)
        if link is not None:
            link.abort()  # calls in flight fail now, and its subscriptions go to follow their queues
            task = asyncio.create_task(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._joined = {j for j in self._joined if j[0] != addr}

    def _address(self, addr: str) -> Address:
        host, _, port = addr.rpartition(":")
        seed = self._seeds[0]
        return Address(host, int(port), seed.tls, seed.user, seed.secret)

    # -- the map ----------------------------------------------------------------------------

    async def refresh(self, avoid: str | None = None) -> None:
        """Read the map from a broker already linked, else from the seeds in turn (never from
        `avoid`)."""
        candidates = list(self._links) + [f"{s.host}:{s.port}" for s in self._seeds]
        last: MQError | None = None
        for addr in dict.fromkeys(candidates):
            if addr == avoid:
                continue
            try:
                async with asyncio.timeout(MAP_READ_TIMEOUT_S):
                    link = await self._link(addr)
                    self.map.learn(await link.call(admin_ops.cluster()))
                self._checks.map_read(asyncio.get_running_loop().time())
                return
            except (MQError, TimeoutError) as e:
                if not isinstance(e, MQError) or isinstance(e, ConnectionLost):
                    self._drop(addr)
                last = e if isinstance(e, MQError) else ConnectionLost(f"{addr} did not answer")
        raise ConnectionLost(f"no broker of the cluster answered ({last})")

    async def _refresh_quietly(self, avoid: str | None = None) -> None:
        try:
            await self.refresh(avoid)
        except MQError as e:
            log.debug("mq cluster map not refreshed: %s", e)


class _OwnerWatch:
    """Watches one request at `addr` (cluster_routing.OwnerChecks): each time it has waited
    `patience_s`, asks whether the map gives `slot` to another broker; once it does, leaves
    `addr`, which fails the request there. `stop()` when the request is done."""

    def __init__(self, cluster: ClusterLink, slot: int, addr: str, patience_s: float) -> None:
        self._cluster = cluster
        self._slot = slot
        self._addr = addr
        self._patience_s = patience_s
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(patience_s, self._check)
        self._looking: asyncio.Task[None] | None = None

    def _check(self) -> None:
        self._looking = asyncio.create_task(self._look())

    async def _look(self) -> None:
        if await self._cluster.owner_moved(self._slot, self._addr):
            self._cluster.leave_stalled(self._addr)
        else:  # a slow owner is not a failed one: wait as long again, then look again
            self._timer = self._loop.call_later(self._patience_s, self._check)

    def stop(self) -> None:
        self._timer.cancel()
        if self._looking is not None:
            self._looking.cancel()
