"""The routing rules of a cluster client (protocol.md 11), sans-IO: both clients' cluster links
(cluster_link.py for asyncio, blocking_cluster.py for the blocking `Client`) follow these, so the
rules are written once.

  - `slot_of_request`: the slot a request is about, from the request alone (a queue or topic by
    the hash of its name, a receipt or msg_id by its low bits); None for one about no queue,
    which any broker answers.
  - `SlotMap`: the cached map, slot -> the address of its broker, read from a `cluster` reply
    and corrected by each MOVED.
  - `Attempts`: one request's tries at its slot's owner. MOVED: go to the new address at once;
    a second MOVED for one request (two brokers that have not both read the new map yet point
    at each other) waits a backoff first. TRYAGAIN, STORE_UNAVAILABLE, a lost connection: wait
    a backoff, read the map again, resend. All of it until `takeover_timeout_s` has passed;
    then the last error is raised. A call that went out and whose broker was lost before it
    answered (`OutcomeUnknown`) is resent only if that is safe (`safe_to_retry`: a `pub` with
    its automatic dedup id, reads, `get`, `ack`, `nack`, `touch`); any other raises at once.
  - `OwnerChecks`: a request left without its reply (its broker paused, say) for its
    `patience_s` makes the client read the map from another broker: if the slot has a new owner
    the link to the old one is dropped (its calls fail as `OutcomeUnknown`, and are resent as
    above); if not, the request keeps waiting (a slow owner is not a failed one) and the map is
    looked at again after as long again.
  - `DedupIds`: the automatic `dedup_id` of each `pub` (`<client uuid>:<n>`), so a resend after
    a lost connection is stored once within the queue's dedup window.
  - `per_slot`: a batch ack split into one request per slot.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from mq_client import ops
from mq_client.errors import (
    ConnectionLost,
    Moved,
    MQError,
    OutcomeUnknown,
    ProtocolError,
    StoreUnavailable,
    TryAgain,
)
from mq_client.request import Request
from mq_client.retry import RECONNECT_BACKOFF, Retry
from mq_client.slots import slot_of, slot_of_id

T = TypeVar("T")

DEFAULT_TAKEOVER_TIMEOUT_S = 10.0
MAP_READ_TIMEOUT_S = 2.0  # a broker that does not say the map by then (paused, say) is skipped
DEFAULT_OWNER_CHECK_S = 1.0
"""How long a request may go without its reply (beyond a `get`'s own `wait_s`) before the client
looks whether its broker still owns the slot, and again after as long each time. A paused
broker's slots move once its etcd lease (3 s by default, kept alive every third of that)
lapses, 2 to 3 s after it stopped: looking every second sees the move within a second of it,
where every 2 s would, at 4 s, often just miss it and wait until 6 s. A broker that is merely
slow costs its waiting clients one map read (from another broker) a second, shared by all
their requests there, and nothing more."""
FOLLOWED = (Moved, TryAgain, StoreUnavailable, ConnectionLost)
"""The errors a cluster client handles by itself (within `takeover_timeout_s`)."""


def slot_of_request(fields: dict[str, Any]) -> int | None:
    """The slot a request is about, or None for one about no queue."""
    for name in ("queue", "topic"):
        value = fields.get(name)
        if isinstance(value, str):
            return slot_of(value)
    receipt = fields.get("receipt")
    if isinstance(receipt, str):
        return slot_of_id(int(receipt.partition(".")[0]))
    receipts = fields.get("receipts")
    if isinstance(receipts, list) and receipts:
        return slot_of_id(int(str(receipts[0]).partition(".")[0]))
    msg_id = fields.get("msg_id")
    return slot_of_id(msg_id) if isinstance(msg_id, int) else None


class SlotMap:
    """Which broker (host:port) serves each slot, as last read or corrected."""

    def __init__(self) -> None:
        self._owner: dict[int, str] = {}
        self.epoch = 0

    def addr(self, slot: int | None) -> str | None:
        """The address of `slot`'s broker; None for no slot, or one the map does not name."""
        return self._owner.get(slot) if slot is not None else None

    def learn(self, reply: dict[str, Any]) -> None:
        """Take the map of a `cluster` reply; `ProtocolError` if it is none, or the broker is in
        no cluster."""
        slots, epoch = reply.get("slots"), reply.get("map_epoch")
        if not isinstance(slots, list) or not isinstance(epoch, int):
            raise ProtocolError(f"cluster reply without slots and map_epoch: {reply!r}")
        if reply.get("cluster") is None:
            raise ProtocolError("this broker is not in a cluster: connect with one mq://host:port")
        owner: dict[int, str] = {}
        for first, last, _node, addr in slots:
            owner.update(dict.fromkeys(range(int(first), int(last) + 1), str(addr)))
        self._owner, self.epoch = owner, epoch

    def moved(self, error: Moved) -> None:
        """A broker said the slot is served at another address."""
        self._owner[error.slot] = error.addr


def may_resend(error: MQError) -> bool:
    """Whether a request that failed with `error` may be sent again: a followed error, unless
    the request went out and may have run, and running it twice would do harm."""
    if isinstance(error, OutcomeUnknown):
        return error.safe_to_retry
    return isinstance(error, FOLLOWED)


@dataclass(frozen=True, slots=True)
class Step:
    """What to do before the next try: wait `wait_s` seconds, then read the map again if
    `refresh`."""

    wait_s: float
    refresh: bool


class Attempts:
    """One request's tries; `after(error, now)` says what to do next, or raises `error` once
    `timeout_s` seconds have passed since `started` (times from one monotonic clock)."""

    def __init__(self, timeout_s: float, started: float, backoff: Retry = RECONNECT_BACKOFF) -> None:
        self._deadline = started + timeout_s
        self._delays = backoff.delays()
        self._hops = 0

    def after(self, error: MQError, now: float) -> Step:
        if not may_resend(error):
            raise error
        if isinstance(error, Moved):
            self._hops += 1
            if self._hops == 1:
                return Step(0.0, refresh=False)  # the new address is known: go there at once
        if now > self._deadline:
            raise error
        return Step(next(self._delays), refresh=not isinstance(error, Moved))


class OwnerChecks:
    """When a request without its reply makes the client look at the map, and what it
    concludes; times in seconds from one monotonic clock.

    Map reads for these checks are shared: one read serves every check made within
    `owner_check_s / 4` after it, so many requests stalled at one broker cost a few reads, not
    one each."""

    def __init__(self, owner_check_s: float = DEFAULT_OWNER_CHECK_S) -> None:
        if not 0 < owner_check_s < float("inf"):  # NaN too
            raise ValueError(f"owner_check_s must be a number of seconds > 0, got {owner_check_s}")
        self.owner_check_s = owner_check_s
        self._read_at = float("-inf")

    def patience_s(self, fields: dict[str, Any]) -> float:
        """How long the request may go without its reply before the next check: what it may
        take by itself (a long-polling `get` its `wait_s`) plus `owner_check_s`."""
        wait_s = fields.get("wait_s")
        own_s = float(wait_s) if isinstance(wait_s, int | float) and not isinstance(wait_s, bool) else 0.0
        return max(own_s, 0.0) + self.owner_check_s

    def map_read(self, now: float) -> None:
        """The map was just read (from any broker that answered)."""
        self._read_at = now

    def need_read(self, now: float) -> bool:
        """Whether a check at `now` must read the map first (no read recent enough to share)."""
        return now - self._read_at >= self.owner_check_s / 4

    @staticmethod
    def moved(slot_map: SlotMap, slots: set[int], addr: str) -> bool:
        """Whether the map gives one of `slots` to a broker other than `addr`, the one the
        request waits on."""
        return any(slot_map.addr(s) not in (None, addr) for s in slots)


class DedupIds:
    """Gives each `pub` without one an automatic `dedup_id`, unique to this client."""

    def __init__(self) -> None:
        self._producer = uuid.uuid4().hex
        self._published = itertools.count(1)

    def __call__(self, request: Request[T]) -> Request[T]:
        if request.fields.get("op") != "pub" or "dedup_id" in request.fields:
            return request
        dedup_id = f"{self._producer}:{next(self._published)}"
        return replace(request, fields={**request.fields, "dedup_id": dedup_id})


def per_slot(request: Request[T]) -> list[Request[T]]:
    """A batch ack as one request per slot of its receipts; any other request as it is."""
    receipts = request.fields.get("receipts")
    if not isinstance(receipts, list):
        return [request]
    by_slot: dict[int, list[str]] = {}
    for r in receipts:
        by_slot.setdefault(slot_of_id(int(str(r).partition(".")[0])), []).append(r)
    if len(by_slot) == 1:
        return [request]
    return [cast(Request[T], ops.ack_batch(group)) for group in by_slot.values()]
