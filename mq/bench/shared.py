"""Live counters and control flags that the harness and its worker processes share.

Each worker owns one slot of counters in shared memory and is its only writer, so no lock is
needed: the harness samples them ten times a second for the progress line and the timeline,
and consumers read the producers' slots to know when everything published has arrived.
Producers take slots 0 .. producers-1, consumers the ones after. Final figures do not come from
here but from each worker's result, which carries its histograms.
"""

from __future__ import annotations

import multiprocessing
from enum import IntEnum
from multiprocessing.context import SpawnContext
from typing import Any


class Counter(IntEnum):
    SENT = 0  # messages handed to the broker (producers)
    CONFIRMED = 1  # messages whose publish was confirmed (producers)
    RECEIVED = 2  # deliveries received, duplicates included (consumers)
    ACKED = 3  # deliveries whose ack was confirmed (consumers)
    ERRORS = 4  # failed requests' messages, either side
    DONE = 5  # 1 once the worker has stopped sending


_COUNTERS = len(Counter)
_STOP, _EXPECTED = 0, 1


class Shared:
    """Counters of every worker plus a stop flag and a start event; picklable to spawned workers.

    `expected` is how many messages the consumers should receive in all (the prefilled count, or
    the total count producers were asked to publish).
    """

    def __init__(self, ctx: SpawnContext, producers: int, consumers: int, expected: int) -> None:
        self.producers = producers
        self.consumers = consumers
        self._counters: Any = ctx.RawArray("q", (producers + consumers) * _COUNTERS)
        self._control: Any = ctx.RawArray("q", 2)
        self._control[_EXPECTED] = expected
        self.start = ctx.Event()

    @classmethod
    def create(cls, producers: int, consumers: int, expected: int) -> Shared:
        return cls(multiprocessing.get_context("spawn"), producers, consumers, expected)

    def add(self, slot: int, counter: Counter, n: int) -> None:
        self._counters[slot * _COUNTERS + counter] += n

    def total(self, counter: Counter, slots: range | None = None) -> int:
        """The sum of `counter` over `slots` (all of them by default)."""
        every = range(self.producers + self.consumers) if slots is None else slots
        return sum(self._counters[s * _COUNTERS + counter] for s in every)

    @property
    def producer_slots(self) -> range:
        return range(self.producers)

    @property
    def consumer_slots(self) -> range:
        return range(self.producers, self.producers + self.consumers)

    def request_stop(self) -> None:
        self._control[_STOP] = 1

    @property
    def stop_requested(self) -> bool:
        return bool(self._control[_STOP])

    def consumer_target(self) -> int:
        """How many deliveries the consumers need in all before they stop.

        While producers still run, the count they were asked for; once all have stopped (done,
        out of time, or failed), the number they got confirmed, so consumers do not wait for
        messages that were never stored.
        """
        slots = self.producer_slots
        if slots and self.total(Counter.DONE, slots) == len(slots):
            return self.total(Counter.CONFIRMED, slots)
        return int(self._control[_EXPECTED])
