"""How long the database has kept a clustered broker waiting, and what the broker does about
it. Pure: the clock is given.

A broker cut off from the database keeps its etcd lease, so nobody takes its slots while it
can commit nothing for them. `StoreWatch` follows the store's own work: each piece of work
is `asking()` when it starts and `done(answered)` when it ends, `answered` being whether the
database replied at all (a refusal by the fence or a data error is a reply; a timeout, a
dropped connection or one that cannot be made is not), and `heard()` when a long piece of
work gets one of its replies. `away_s()` is how long the database has been silent while work
waited for it, whether that work is in flight (a blackholed connection hangs rather than
fails) or it failed and nothing has answered since.

`step` turns that into what the broker does: past `timeout_s` a member gives up its etcd
membership, so the others take its slots over; a broker that gave it up joins again once the
database answers (its own probes, while it is out).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum


class StoreWatch:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._pending = 0  # pieces of work started and not ended
        self._since: float | None = None  # the oldest unanswered one started then

    def asking(self) -> None:
        if self._since is None:
            self._since = self._clock()
        self._pending += 1

    def heard(self) -> None:
        """The database replied to a piece of work that goes on (one chunk of a long read):
        what still waits has waited from now on."""
        if self._since is not None:
            self._since = self._clock()

    def forgive(self) -> None:
        """This broker itself stood still (SIGSTOP, a stall): what waited did not wait for the
        database, which gets its full time again from now."""
        self.heard()

    def done(self, answered: bool) -> None:
        self._pending -= 1
        if answered:
            self._since = None if not self._pending else self._clock()

    def away_s(self) -> float:
        """Seconds the database has left work without a reply; 0 while it answers."""
        return 0.0 if self._since is None else self._clock() - self._since


class Step(Enum):
    STAY = "stay"  # nothing to do
    LEAVE = "leave"  # give up the etcd membership and every slot
    REJOIN = "rejoin"  # register again: the database answers


def step(away_s: float, timeout_s: float, member: bool) -> Step:
    """What a broker does, given how long the database has been away and whether it is a
    member of its cluster now."""
    if member:
        return Step.LEAVE if away_s > timeout_s else Step.STAY
    return Step.REJOIN if away_s == 0.0 else Step.STAY
