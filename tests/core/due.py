"""When the broker's next tick is due, as a time: the core tests drive both of its clocks with
one FakeClock, so `next_due_in` seconds from now is a time on that clock."""

from __future__ import annotations

from mq.core.broker import Broker


def due_at(core: Broker) -> float | None:
    """When `tick` next has something to do, on the broker's (single, fake) clock; None if never."""
    due_in = core.next_due_in()
    return None if due_in is None else core.clock() + due_in
