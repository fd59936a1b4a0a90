"""Reading back the bodies a broker keeps in the log only, beyond `max_body_memory_bytes`.

A lease that reaches a message whose body is in the log only stops there and names the next
such messages of its queue (`Broker.take_wanted`). At the end of the round they are handed
here: one read per queue at a time, each one SELECT for a batch of bodies on the store's thread,
so the loop never waits. The read waits first for the commit of everything submitted so far (a
body may be left out of memory in the round of its publish, before its row is written). The
bodies go to the core (`fill_bodies`), which wakes the queue, and the next round delivers them,
in order: nothing is delivered past a body that is not in memory, so GETs, subscriptions and
PEEKs never see one, and a client waits only for its own queue's read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from mq.core.broker import Broker
from mq.storage.base import StoreUnavailable

log = logging.getLogger("mq.server")


class BodyReader:
    def __init__(self, core: Broker, read: Callable[[Sequence[int]], Awaitable[dict[int, bytes]]],
                 committed: Callable[[int], Awaitable[None]], last_submitted: Callable[[], int],
                 spawn: Callable[[Coroutine[Any, Any, None]], object],
                 on_read: Callable[[], None]) -> None:
        """`read`: the store's read_bodies; `committed(n)` returns once batch n is committed;
        `on_read` runs a round once bodies came in (to deliver them)."""
        self._core = core
        self._read = read
        self._committed = committed
        self._last_submitted = last_submitted
        self._spawn = spawn
        self._on_read = on_read
        self._reading: set[str] = set()  # queues with a read under way

    @property
    def reading(self) -> int:
        """Queues whose bodies are being read now."""
        return len(self._reading)

    def request(self, wanted: dict[str, list[int]]) -> None:
        """Read the bodies a lease stopped at (queue -> ids), unless that queue's are being
        read already (its next lease asks again)."""
        for queue, ids in wanted.items():
            if queue not in self._reading:
                self._reading.add(queue)
                self._spawn(self._read_for(queue, ids))

    async def _read_for(self, queue: str, ids: list[int]) -> None:
        try:
            await self.fill(queue, ids)
        except (StoreUnavailable, OSError) as e:
            log.warning("cannot read bodies of %s back from the log (%s); the next delivery "
                        "tries again", queue, e)
        finally:
            self._reading.discard(queue)
            self._on_read()

    async def fill(self, queue: str, ids: Sequence[int]) -> None:
        """Read the bodies of `ids` (messages of `queue`, at most MAX_BODY_READ) into the
        core, once their publishes are committed."""
        await self._committed(self._last_submitted())
        self._core.fill_bodies(queue, await self._read(ids))
