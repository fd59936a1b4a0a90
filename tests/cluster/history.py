"""The history checker of the cluster scenarios: what clients saw, what the brokers logged, and
whether the two together keep mq's promises. Pure: no sockets, no clock, no asyncio.

Theory of operation. During a scenario every producer and consumer appends what happened to
it to a `History`, with the wall-clock time it happened (all processes run on one machine, so
one clock orders them):

- a producer: `PublishSent` (invoke), then `PublishConfirmed` with the msg_id (ok) or
  `PublishFailed` (the SDK gave up: may or may not have taken effect);
- a consumer: `Delivered` for every message a `get` handed it (msg_id, delivery number from the
  receipt, holder) and `AckConfirmed` once the broker confirmed its ack;
- the test itself: `HolderKilled` when it kill -9s a consumer process, `BrokerKilled` when it
  kill -9s (or SIGSTOPs) a broker.

After the run the queues are drained, and the brokers' own record of every lease is read with
`history` (protocol.md 2.3): `leases_from_events` turns those events into `Lease` values, with
the start the broker logged, the deadline it reports (or start + lease_s when it reports none),
and the time it logged the lease's end (acked, nacked, expired, released), if any.

`check` then finds, per confirmed message:

- **lost**: confirmed, never delivered; **unacked**: delivered, never acked by the end (a
  confirmed ack, or an ack the log holds: its confirmation may have died with its broker);
- **acked, delivered again**: once delivery d was acked (confirmed), no delivery after d may
  exist, neither seen by a client nor logged by a broker. (An ack of d after d + 1 went out is
  the same fault seen from the other side: the broker took an ack for a superseded lease.)
- **double leases**: two deliveries of one message whose live intervals overlap;
- **phantom deliveries**: a client got a delivery that no broker logged a lease for (a
  delivery must be committed before it is sent);
- **id reused**: two different publishes confirmed with one msg_id.

What "live" means, which is the heart of the double-lease rule. A lease is live from the moment
the broker logged it until the earliest of: the end the log records (ack, nack, expiry, or
`released (holder died)`: the broker declared the holder dead), the lease's deadline, and the
moment its holder was killed (`HolderKilled`). So:

- **A killed consumer** is dead from its kill on: what it held can do no more work, so a second
  lease after that is no double lease, even before the broker notices the death. That is the
  promise a user cares about (never two live workers on one message at once), and the broker may
  keep it by declaring the death (`dead_after_s`) or by the deadline, whichever comes first.
- **A killed or paused broker** kills no holder. Its consumers are alive and still working on
  what it leased to them, and the new owner of the slot loads those leases from the log with
  their deadlines (design note 3.5). So a broker failure ends no lease: only an end logged by a
  broker (the new owner's expiry at the deadline, the consumer's ack resent to the new owner),
  or the deadline itself, does. A lease the dead broker committed but whose delivery never
  reached its consumer is still live until its deadline: nobody else may get that message
  before then.

A broker's clock and a client's are the same clock here; `slack_s` only absorbs float rounding
of the logged times.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

INF = float("inf")
ENDS_A_LEASE = frozenset({"acked", "nacked", "lease expired", "released (holder died)",
                          "released (holder left)", "dead-lettered", "removed"})


@dataclass(frozen=True, slots=True)
class PublishSent:
    producer: str
    seq: int
    queue: str
    at: float


@dataclass(frozen=True, slots=True)
class PublishConfirmed:
    producer: str
    seq: int
    queue: str
    msg_id: int
    at: float


@dataclass(frozen=True, slots=True)
class PublishFailed:
    producer: str
    seq: int
    at: float
    error: str


@dataclass(frozen=True, slots=True)
class Delivered:
    consumer: str
    msg_id: int
    delivery: int
    at: float


@dataclass(frozen=True, slots=True)
class AckConfirmed:
    consumer: str
    msg_id: int
    delivery: int
    at: float


@dataclass(frozen=True, slots=True)
class HolderKilled:
    consumer: str
    at: float


@dataclass(frozen=True, slots=True)
class BrokerKilled:
    node: str
    at: float
    how: str = "kill -9"


@dataclass(frozen=True, slots=True)
class Lease:
    """One delivery of a message as a broker logged it: who held it from when until when."""

    msg_id: int
    delivery: int
    holder: str
    start: float
    deadline: float
    end: float | None = None  # when the log says it ended (ack, nack, expiry, release)
    ended_by: str | None = None  # the event that ended it, as `history` names it

    def live_until(self, killed_at: float | None) -> float:
        """When this lease stopped being live, given when its holder was killed (or None)."""
        return min(INF if self.end is None else self.end, self.deadline,
                   INF if killed_at is None else killed_at)


def holder_name(holder: str) -> str:
    """The consumer name of a holder as the broker writes it (`consumer/token8`)."""
    return holder.split("/", 1)[0]


def receipt_delivery(receipt: str) -> tuple[int, int]:
    """(msg_id, delivery) of a receipt `<msg_id>.<delivery>`."""
    msg_id, _, delivery = receipt.partition(".")
    return int(msg_id), int(delivery)


@dataclass
class History:
    """What clients saw and what the test did, appended as it happens (one event loop: no lock)."""

    sent: list[PublishSent] = field(default_factory=list)
    confirmed: list[PublishConfirmed] = field(default_factory=list)
    failed: list[PublishFailed] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    acked: list[AckConfirmed] = field(default_factory=list)
    holders_killed: list[HolderKilled] = field(default_factory=list)
    brokers_killed: list[BrokerKilled] = field(default_factory=list)

    def confirmed_ids(self) -> set[int]:
        return {c.msg_id for c in self.confirmed}

    def acked_ids(self) -> set[int]:
        return {a.msg_id for a in self.acked}


def leases_from_events(msg_id: int, events: Sequence[Mapping[str, Any]],
                       lease_s: float) -> list[Lease]:
    """The leases of one message from its `history` events, oldest first.

    A `leased` event starts one; the first later event that ends a lease (ENDS_A_LEASE) ends it;
    a later `touched` event moves its deadline. The deadline is the event's own `deadline` when
    the broker reports one, else its start + `lease_s` (the lease the consumers asked for).
    """
    leases: list[Lease] = []
    open_lease: Lease | None = None
    for ev in events:
        kind, at = ev.get("event"), float(ev["at"])
        if kind == "leased":
            if open_lease is not None:
                leases.append(open_lease)  # never ended in the log: live to its deadline
            deadline = float(ev.get("deadline") or at + lease_s)
            open_lease = Lease(msg_id, int(ev["delivery"]), str(ev.get("holder", "")), at,
                               deadline)
        elif open_lease is not None and kind == "touched" and ev.get("deadline") is not None:
            open_lease = replace(open_lease, deadline=float(ev["deadline"]))
        elif open_lease is not None and kind in ENDS_A_LEASE:
            leases.append(replace(open_lease, end=at, ended_by=str(kind)))
            open_lease = None
    if open_lease is not None:
        leases.append(open_lease)
    return leases


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two deliveries of one message that were live at once, and for how long (seconds)."""

    first: Lease
    second: Lease
    seconds: float

    def __str__(self) -> str:
        return (f"msg {self.first.msg_id}: delivery {self.first.delivery} to "
                f"{self.first.holder} and delivery {self.second.delivery} to "
                f"{self.second.holder} were live together for {self.seconds:.3f} s")


@dataclass(frozen=True, slots=True)
class Verdict:
    confirmed: int
    lost: tuple[int, ...]
    unacked: tuple[int, ...]
    acked_then_delivered: tuple[int, ...]
    double_leases: tuple[Overlap, ...]
    phantom_deliveries: tuple[tuple[int, int], ...]
    ids_reused: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unacked or self.acked_then_delivered
                    or self.double_leases or self.phantom_deliveries or self.ids_reused)

    def summary(self) -> str:
        parts = [f"confirmed {self.confirmed}", f"lost {len(self.lost)}",
                 f"unacked {len(self.unacked)}",
                 f"acked then delivered {len(self.acked_then_delivered)}",
                 f"double leases {len(self.double_leases)}",
                 f"phantom deliveries {len(self.phantom_deliveries)}",
                 f"ids reused {len(self.ids_reused)}"]
        details = [f"lost: {list(self.lost[:20])}" if self.lost else "",
                   f"unacked: {list(self.unacked[:20])}" if self.unacked else "",
                   f"acked then delivered: {list(self.acked_then_delivered[:20])}"
                   if self.acked_then_delivered else "",
                   *(str(o) for o in self.double_leases[:20]),
                   f"phantom (msg, delivery): {list(self.phantom_deliveries[:20])}"
                   if self.phantom_deliveries else "",
                   f"ids reused: {list(self.ids_reused[:20])}" if self.ids_reused else ""]
        return "; ".join(parts) + "".join(f"\n  {d}" for d in details if d)


def check(history: History, leases: Iterable[Lease] | None = None) -> Verdict:
    """Judge one run. `leases` are the brokers' leases of the run's messages (every message's
    `history`); None when the log was not read, which skips the checks that need it."""
    confirmed = history.confirmed_ids()
    delivered: dict[int, set[int]] = defaultdict(set)
    for d in history.delivered:
        delivered[d.msg_id].add(d.delivery)
    by_msg: dict[int, list[Lease]] = defaultdict(list)
    for lease in leases or ():
        by_msg[lease.msg_id].append(lease)
    # An ack whose confirmation was lost (the broker died first) is still an ack if it is logged.
    acked = history.acked_ids() | {m for m, ls in by_msg.items()
                                   if any(x.ended_by == "acked" for x in ls)}
    return Verdict(
        confirmed=len(confirmed),
        lost=tuple(sorted(m for m in confirmed if m not in delivered)),
        unacked=tuple(sorted(m for m in confirmed if m in delivered and m not in acked)),
        acked_then_delivered=_acked_then_delivered(history, delivered, by_msg),
        double_leases=_double_leases(by_msg, _kill_times(history)),
        phantom_deliveries=() if leases is None else _phantoms(delivered, by_msg),
        ids_reused=_ids_reused(history))


def _acked_then_delivered(history: History, delivered: Mapping[int, set[int]],
                          by_msg: Mapping[int, list[Lease]]) -> tuple[int, ...]:
    first_acked: dict[int, int] = {}
    logged = [(x.msg_id, x.delivery) for ls in by_msg.values() for x in ls
              if x.ended_by == "acked"]
    for msg_id, delivery in [(a.msg_id, a.delivery) for a in history.acked] + logged:
        first_acked[msg_id] = min(delivery, first_acked.get(msg_id, delivery))
    bad = set()
    for msg_id, d in first_acked.items():
        later = set(delivered.get(msg_id, ())) | {x.delivery for x in by_msg.get(msg_id, ())}
        if any(x > d for x in later):
            bad.add(msg_id)
    return tuple(sorted(bad))


def _kill_times(history: History) -> dict[str, float]:
    killed: dict[str, float] = {}
    for k in history.holders_killed:
        killed[k.consumer] = min(k.at, killed.get(k.consumer, k.at))
    return killed


def _double_leases(by_msg: Mapping[int, list[Lease]], killed: Mapping[str, float],
                   slack_s: float = 0.001) -> tuple[Overlap, ...]:
    found = []
    for leases in by_msg.values():
        ordered = sorted(leases, key=lambda x: (x.start, x.delivery))
        for i, a in enumerate(ordered):
            a_until = a.live_until(killed.get(holder_name(a.holder)))
            for b in ordered[i + 1:]:
                if b.delivery == a.delivery:
                    continue  # the same lease logged twice (a commit written again)
                b_until = b.live_until(killed.get(holder_name(b.holder)))
                both = min(a_until, b_until) - b.start
                if both > slack_s:
                    found.append(Overlap(a, b, both))
    return tuple(found)


def _phantoms(delivered: Mapping[int, set[int]],
              by_msg: Mapping[int, list[Lease]]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((m, d) for m, ds in delivered.items() for d in ds
                        if d not in {x.delivery for x in by_msg.get(m, ())}))


def _ids_reused(history: History) -> tuple[int, ...]:
    publishes: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for c in history.confirmed:
        publishes[c.msg_id].add((c.producer, c.seq))
    return tuple(sorted(m for m, who in publishes.items() if len(who) > 1))


@dataclass(frozen=True, slots=True)
class Recovery:
    """How long after each broker fault every queue was served again (seconds)."""

    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else 0.0

    @property
    def max_s(self) -> float:
        return max(self.times_s, default=0.0)

    def __str__(self) -> str:
        return (f"served again after {len(self.times_s)} faults: median {self.median_s:.2f} s, "
                f"max {self.max_s:.2f} s")


def recovery(history: History, queues: Iterable[str]) -> Recovery:
    """For each broker fault, the time until every queue in `queues` had confirmed a publish
    again after it: the slots of the broker that went away are then served by someone. A queue
    with no confirmation after a fault counts as never served (infinity)."""
    confirms: dict[str, list[float]] = defaultdict(list)
    for c in history.confirmed:
        confirms[c.queue].append(c.at)
    for times in confirms.values():
        times.sort()
    names = list(queues)
    out = []
    for fault in history.brokers_killed:
        worst = 0.0
        for q in names:
            after = next((t for t in confirms.get(q, ()) if t > fault.at), INF)
            worst = max(worst, after - fault.at)
        out.append(worst)
    return Recovery(tuple(out))
