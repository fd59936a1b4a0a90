"""A real broker in this test process, on real loopback sockets but on fake time.

The broker runs its own event loop (uvloop, as in production) in a thread; the test talks to it
through ordinary sockets from its own thread. Its two clocks, the wall clock (`clock`, Unix s)
and the monotonic one, are FakeClocks that move only when the test calls `advance` (both: time
passes) or `step_wall` (the wall clock alone: someone set the time). Each then runs one tick of
the broker and waits until what the tick changed is committed. So a lease that expires, a delay
that ends, a GET that waits out its `wait_s` or a consumer that misses its heartbeats happen
exactly when the test says, however slow or busy the machine is: no test sleeps on the wall
clock to see them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mq.core.clock import FakeClock
from mq.server.app import BrokerServer
from mq.server.config import Config
from mq.server.run import run_loop
from mq.storage.sqlite import SQLiteStore

START_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 10.0


class InProcessBroker:
    def __init__(self, db_path: Path, **settings: Any) -> None:
        self.clock = FakeClock()  # the wall clock
        self.monotonic = FakeClock(1_000.0)  # another origin, as a real monotonic clock has
        config = dataclasses.replace(Config(), port=0, db_path=str(db_path), **settings)
        self.server = BrokerServer(config, clock=self.clock, monotonic=self.monotonic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="inprocess-broker", daemon=True)
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"mq://127.0.0.1:{self.port}"

    def start(self) -> InProcessBroker:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the in-process broker did not start: {self.error!r}")
        return self

    def _serve(self) -> None:
        try:
            run_loop(self.server.run(on_ready=self._on_ready))
        except BaseException as e:  # reported by start() and stop()
            self.error = e
            self._ready.set()

    def _on_ready(self, server: BrokerServer) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready.set()

    def advance(self, seconds: float) -> None:
        """Move both of the broker's clocks on by `seconds`, run its tick, and return once the
        changes of that tick are committed (so the replies and pushes it made are on their
        way)."""
        self._call(self._tick_after(self.clock.advance, self.monotonic.advance, seconds=seconds))

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone by `seconds` (either way), as an operator or NTP setting
        the time does, then tick and wait for the commit, as `advance` does."""
        self._call(self._tick_after(self.clock.advance, seconds=seconds))

    async def _tick_after(self, *moves: Callable[[float], None], seconds: float) -> None:
        for move in moves:
            move(seconds)
        self.server.rounds.tick()
        target = self.server.group.last_submitted
        while self.server.group.committed < target:
            await asyncio.sleep(0.001)

    def wait_for_waiting_gets(self, count: int) -> None:
        """Return once exactly `count` GETs wait in the broker: a GET that was only sent may not
        have been read yet, and a clock moved before it is parked does not count for it."""
        self._call(self._until(lambda: self.server.delivery.waiting() == count))

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await asyncio.sleep(0.001)

    def wait_for_connections(self, count: int, opened: int | None = None) -> None:
        """Return once the broker holds exactly `count` connections (it saw a close), and, if
        given, once it has accepted `opened` connections since it started: a client that
        connected and closed at once may still wait in the kernel's accept queue."""
        server = self.server
        self._call(self._until(lambda: len(server.rounds.connections) == count and (
            opened is None or server.traffic.opened >= opened)))

    def _call(self, work: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(SETTLE_TIMEOUT_S)

    @contextmanager
    def writer_held(self) -> Iterator[None]:
        """Within it the thread that writes the broker's log is kept busy in a query that waits,
        so no commit can happen; what waited for one goes on at the end."""
        store = self.server.store
        assert isinstance(store, SQLiteStore)
        entered, release = threading.Event(), threading.Event()

        def hold() -> int:
            entered.set()
            release.wait(SETTLE_TIMEOUT_S)
            return 0

        async def query() -> None:
            await store.db.create_function("mq_test_hold", 0, hold)
            await store.db.execute("SELECT mq_test_hold()")

        assert self._loop is not None
        held = asyncio.run_coroutine_threadsafe(query(), self._loop)
        assert entered.wait(SETTLE_TIMEOUT_S)
        try:
            yield
        finally:
            release.set()
            held.result(SETTLE_TIMEOUT_S)

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.server.stop)
            self._thread.join(START_TIMEOUT_S)
        if self.error is not None:
            raise self.error


@contextmanager
def broker_on_fake_time(db_path: Path, **settings: Any) -> Iterator[InProcessBroker]:
    broker = InProcessBroker(db_path, **settings).start()
    try:
        yield broker
    finally:
        broker.stop()
