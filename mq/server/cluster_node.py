"""A clustered broker's slots: it loads those the map gives it and drops those it loses.

The member loop (mq/cluster/member.py) hands over every view of the cluster it reads. Here:
  - a slot the map gives this broker goes to `router.loading` (TRYAGAIN) and into the line of
    the loader, which fences it in Postgres at the map's epoch (`take`), folds its rows
    (`load`), gives them to the core and only then serves it;
  - a slot the map gives to another broker, or that a fenced commit says is lost, is dropped
    at once: no longer written (`release`), its queues forgotten by the core, its waiting GETs
    answered, its subscribers told `moved`; requests for it get MOVED from then on.
Loading one slot at a time keeps each step short, so the loop (and the keep-alive of the
lease) never waits long; the first slots are served while the last still load.

Every slot is dropped at once when the member finds its etcd lease lapsed (it was paused or
cut off past the TTL: the others own them now), and when the database has left the store's
work without a reply for `cluster_store_timeout_s` (store_watch.py): the broker then gives up
its membership so that brokers that can write take its slots over, answers TRYAGAIN or MOVED
meanwhile, probes the database, and joins again once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from mq.cluster.etcd import Etcd
from mq.cluster.keys import ClusterView
from mq.cluster.member import Member
from mq.cluster.slots import SlotIds, slot_of
from mq.cluster.store_watch import Step, step
from mq.codec.replies import ClusterMap
from mq.core.broker import Broker
from mq.errors import MQError
from mq.server.config import Config
from mq.server.routing import Router
from mq.storage.base import StoreUnavailable
from mq.storage.pg_cluster import ClusteredPostgresStore, SlotLost

log = logging.getLogger("mq.cluster")


class ClusterNode:
    def __init__(self, config: Config, store: ClusteredPostgresStore, core: Broker,
                 ids: SlotIds, end_queue: Callable[[str, MQError], None],
                 after_change: Callable[[], None]) -> None:
        """`end_queue(queue, error)` ends what waits on a queue that moved (rounds.py);
        `after_change` runs a round once slots were loaded or dropped."""
        assert config.cluster is not None and config.node is not None
        assert config.etcd is not None
        self.config = config
        self.store = store
        self.core = core
        self.ids = ids
        self.end_queue = end_queue
        self.after_change = after_change
        self.router = Router(config.node)
        self.etcd = Etcd(config.etcd)
        addr = config.advertise or f"{config.host}:{config.port}"
        self.member = Member(self.etcd, config.cluster, config.node, addr, self.apply,
                             ttl_s=config.cluster_ttl_s, poll_s=config.cluster_poll_s,
                             on_lapse=self.drop_all)
        self._to_load: asyncio.Queue[int] = asyncio.Queue()

    def advertise(self, port: int) -> None:
        """The port is known once the listener is bound (`--port 0`)."""
        if self.config.advertise is None:
            self.member.addr = f"{self.config.host}:{port}"

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.member.run(), name="cluster-member")
            tasks.create_task(self._loader(), name="slot-loader")
            tasks.create_task(self._watch_store(), name="store-watch")

    async def leave(self) -> None:
        await self.member.leave()
        await self.etcd.close()

    # --- the map ------------------------------------------------------------------------------

    def apply(self, view: ClusterView) -> None:
        """Follow the map: queue the slots given to this broker, drop those taken away."""
        router = self.router
        router.map = view.map
        node = self.member.node
        mine = ({s for s, o in view.map.owners.items() if o.node == node}
                if self.member.in_cluster else set())
        lost = (router.serving | router.loading) - mine
        for slot in sorted(lost):
            self.drop(slot)
        for slot in sorted(mine - router.serving - router.loading):
            router.loading.add(slot)
            self._to_load.put_nowait(slot)
        if lost:
            self.after_change()

    def drop(self, slot: int) -> None:
        """Stop serving `slot` now (it moved, or a commit for it was fenced)."""
        router = self.router
        was_served = slot in router.serving
        router.serving.discard(slot)
        router.loading.discard(slot)
        self.store.release(slot)
        if not was_served:
            return
        error = router.elsewhere(slot)
        queues = [q for q in self.core.queue_names() if slot_of(q) == slot]
        for queue in queues:
            self.end_queue(queue, error)
        self.core.forget(queues)
        log.info("slot %d dropped (%s)", slot, error.code.value)

    def drop_all(self) -> None:
        """Stop serving every slot now (the lease lapsed, or the database is away)."""
        held = sorted(self.router.serving | self.router.loading)
        for slot in held:
            self.drop(slot)
        if held:
            log.warning("cluster %s: node %s dropped its %d slots", self.config.cluster,
                        self.member.node, len(held))
            self.after_change()

    # --- the database ------------------------------------------------------------------------

    async def _watch_store(self) -> None:
        timeout_s = self.config.cluster_store_timeout_s
        poll_s = self.config.cluster_poll_s
        watch = self.store.watch
        while True:
            slept = time.monotonic()
            await asyncio.sleep(poll_s)
            if time.monotonic() - slept > poll_s + timeout_s / 2:
                watch.forgive()  # this broker was paused: its replies wait unread, not unsent
            if not self.member.in_cluster or watch.away_s() > poll_s:
                await self._probe(timeout_s)  # an idle broker's one failure is no outage
            match step(watch.away_s(), timeout_s, self.member.in_cluster):
                case Step.LEAVE:
                    log.error("cluster %s: the database has not answered node %s for %.1f s "
                              "(--cluster-store-timeout-s %g): it gives up its slots and its "
                              "membership until the database answers again", self.config.cluster,
                              self.member.node, watch.away_s(), timeout_s)
                    self.drop_all()
                    self.store.abandon()
                    await self.member.step_out()
                case Step.REJOIN:
                    self.member.rejoin()

    async def _probe(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError, StoreUnavailable):
            async with asyncio.timeout(timeout_s):
                await self.store.ping()

    async def _loader(self) -> None:
        while True:
            slot = await self._to_load.get()
            if slot in self.router.loading:
                await self._load(slot)

    async def _load(self, slot: int) -> None:
        owner = self.router.map.owner(slot)
        if owner is None or owner.node != self.member.node:
            self.router.loading.discard(slot)
            return
        try:
            await self.store.take(slot, owner.epoch)
            recovered = await self.store.load(slot, self.config.lease_s)
        except (SlotLost, StoreUnavailable) as e:
            log.warning("slot %d not loaded (%s); trying again at the next map read", slot, e)
            self.router.loading.discard(slot)
            self.store.release(slot)
            return
        now = self.router.map.owner(slot)
        if slot not in self.router.loading or now is None or now.epoch != owner.epoch:
            self.store.release(slot)  # it moved again while it loaded
            self.router.loading.discard(slot)
            return
        self.core.restore(recovered.settings, recovered.messages, recovered.next_id,
                          recovered.bindings, recovered.finished_dedup, recovered.plain)
        self.core.restore_leases(recovered.leases)
        self.ids.raise_past(recovered.next_id - 1)
        self.router.loading.discard(slot)
        self.router.serving.add(slot)
        self.after_change()

    # --- what it tells -----------------------------------------------------------------------

    def cluster_map(self) -> ClusterMap:
        d = self.router.map.describe()
        return ClusterMap(self.config.cluster, self.member.node, d["map_epoch"], d["slots"],
                          d["brokers"])

    def figures(self) -> dict[str, object]:
        return {"cluster": self.config.cluster, "node": self.member.node,
                "slots_owned": len(self.router.serving),
                "slots_loading": len(self.router.loading),
                "map_epoch": self.router.map.epoch}
