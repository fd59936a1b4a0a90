"""Which queues a run with `--queues N` loads, which broker serves each, and who gets which.

One queue is one slot, so one broker: to load every broker of a cluster the run spreads its
messages over N queues whose slots the map gives to different brokers. Names are the run's
queue name plus `-<j>`; `spread_names` scans j = 0, 1, ... and keeps a name when its slot is
new and its owner still needs queues, so the N queues fall on the brokers as evenly as N
allows (queue i on broker i mod B, brokers sorted by address). A single broker owns every
slot: the names are simply `-0` .. `-(N-1)`.

`share` gives each of W workers (producers, or consumers) its queues: with W >= N worker w
takes queue w mod N, otherwise worker w takes queues w, w+W, w+2W, ..., so every queue has a
producer and a consumer. Pure: the map comes in as a dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mq_client.slots import slot_of

MAX_QUEUES = 1_024  # one per slot at most: two queues of one slot are one broker's work
MAX_CANDIDATES = 1_000_000  # names tried before giving up on an even spread
SUFFIX_CHARS = 8  # "-" and up to 7 digits of j


def queue_name(base: str, j: int) -> str:
    return f"{base}-{j}"


def spread_names(base: str, n: int, owner_of_slot: Mapping[int, str] | None) -> list[str]:
    """N queue names from `base`, their slots on distinct slots spread evenly over the owners
    in `owner_of_slot` (slot -> broker address); None for a single broker.

    Raises ValueError if the map cannot take N queues of distinct slots that evenly.
    """
    if owner_of_slot is None:
        return [queue_name(base, j) for j in range(n)]
    brokers = sorted(set(owner_of_slot.values()))
    if not brokers:
        raise ValueError("the cluster's map gives no slot to any broker: wait until it has")
    wanted = {b: n // len(brokers) + (1 if i < n % len(brokers) else 0)
              for i, b in enumerate(brokers)}
    picked: dict[str, list[str]] = {b: [] for b in brokers}
    taken: set[int] = set()
    for j in range(MAX_CANDIDATES):
        if all(len(picked[b]) == wanted[b] for b in brokers):
            break
        name = queue_name(base, j)
        slot = slot_of(name)
        owner = owner_of_slot.get(slot)
        if slot in taken or owner is None or len(picked[owner]) == wanted[owner]:
            continue
        taken.add(slot)
        picked[owner].append(name)
    else:
        raise ValueError(f"could not place {n} queues on distinct slots spread over "
                         f"{len(brokers)} brokers: give fewer --queues")
    # Queue i on broker i mod B: workers that take every B-th queue then load one broker each.
    return [picked[b][k] for k in range(max(wanted.values())) for b in brokers
            if k < len(picked[b])]


def share(queues: Sequence[str], workers: int, index: int) -> tuple[str, ...]:
    """The queues of worker `index` of `workers` (see the module docstring)."""
    n = len(queues)
    if workers >= n:
        return (queues[index % n],)
    return tuple(queues[index::workers])
