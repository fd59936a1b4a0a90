"""The target owner of every slot, from the live brokers, by the consistent ring (mq/ring.py):
slot n belongs to `HashRing(brokers).owner(f"slot:{n}")`. A broker joining takes about 1/N of
the slots from the others; a broker leaving gives away only its own. Pure.

`plan` turns (current owners, target) into the moves to make now: slots with no live owner
first (they serve nobody), then planned moves, at most `max_moves` at a time so a join or a
drain does not make every client retry at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mq.cluster.slots import SLOTS
from mq.ring import HashRing

RING_VNODES = 256  # points per broker: with 3 brokers, each gets 1024/3 +- about 10%


def target(brokers: Iterable[str], vnodes: int = RING_VNODES) -> dict[int, str]:
    """slot -> its broker; empty when there are no brokers."""
    ring = HashRing(sorted(brokers), vnodes=vnodes)
    if not len(ring):
        return {}
    return {n: owner for n in range(SLOTS) if (owner := ring.owner(f"slot:{n}")) is not None}


def plan(current: Mapping[int, str], live: Iterable[str], leaving: Iterable[str] = (),
         max_moves: int = 32) -> dict[int, str]:
    """The moves (slot -> new owner) to write now. `current`: the slot map's owners (a slot
    may be missing: never assigned). `live`: brokers with a membership key; `leaving`: those
    being drained, which get no slots but keep theirs until moved."""
    live_set = set(live)
    goal = target(live_set - set(leaving))
    orphans = {s: o for s, o in goal.items() if current.get(s) not in live_set}
    planned = {s: o for s, o in goal.items() if s not in orphans and current.get(s) != o}
    moves = dict(orphans)  # a dead owner serves nobody: these go all at once
    for s in sorted(planned)[:max_moves]:
        moves[s] = planned[s]
    return moves
