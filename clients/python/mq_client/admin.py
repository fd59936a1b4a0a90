"""Queue administration and introspection, for both clients (protocol.md 2.3, 4.3 and 4.4).

`AsyncAdmin` and `SyncAdmin` are mixins: `AsyncClient` and `Client` inherit these methods, which
only build a request (`admin_ops`) and hand it to the client's `_call`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from mq_client import admin_ops
from mq_client.message import PeekedMessage
from mq_client.request import Request

T = TypeVar("T")


class AsyncAdmin:
    """Administration methods of `AsyncClient`."""

    __slots__ = ()

    def _call(self, request: Request[T]) -> Awaitable[T]:
        raise NotImplementedError  # the client's

    async def declare(
        self,
        queue: str,
        *,
        retention_s: float | None = None,
        lease_s: float | None = None,
        max_deliveries: int | None = None,
        dead_letter: str | None = None,
        dedup_window_s: float | None = None,
    ) -> dict[str, Any]:
        """Create `queue` or change the settings given; returns all its settings.

        `retention_s`: age in seconds after which messages are removed, consumed or not;
        `lease_s`: the default lease of a `get`, in seconds; `max_deliveries`: after that many
        deliveries a message that comes back goes to the dead-letter queue (0: no limit);
        `dead_letter`: that queue (default `<queue>.dlq`); `dedup_window_s`: how long, in
        seconds, a `dedup_id` is remembered. None leaves a setting as it is.
        """
        return await self._call(
            admin_ops.declare(
                queue,
                retention_s=retention_s,
                lease_s=lease_s,
                max_deliveries=max_deliveries,
                dead_letter=dead_letter,
                dedup_window_s=dedup_window_s,
            )
        )

    async def purge(self, queue: str) -> int:
        """Remove every message of `queue`, leased ones included; returns how many."""
        return await self._call(admin_ops.purge(queue))

    async def delete(self, queue: str) -> int:
        """Purge `queue` and forget it, its settings and bindings; returns the messages removed.

        Raises `NotFound` if there is no such queue.
        """
        return await self._call(admin_ops.delete(queue))

    async def peek(self, queue: str, count: int = 10) -> list[PeekedMessage]:
        """The next `count` (1..1,000) ready messages of `queue`, in delivery order, not leased."""
        return await self._call(admin_ops.peek(queue, count))

    async def redrive(self, queue: str, count: int | None = None, to: str | None = None) -> int:
        """Move up to `count` (broker default 1,000) messages of the dead-letter queue `queue` back
        to where they came from, or to `to`; returns how many moved."""
        return await self._call(admin_ops.redrive(queue, count, to))

    async def bind(self, topic: str, queue: str) -> bool:
        """Give `queue` a copy of every `fanout` to `topic`; False if it was bound already."""
        return await self._call(admin_ops.bind(topic, queue))

    async def unbind(self, topic: str, queue: str) -> bool:
        """Undo a `bind`; False if `queue` was not bound to `topic`."""
        return await self._call(admin_ops.unbind(topic, queue))

    async def bindings(self, topic: str | None = None) -> dict[str, list[str]]:
        """Topic -> its bound queues (sorted), for `topic` or for every topic."""
        return await self._call(admin_ops.bindings(topic))

    async def explain(self, msg_id: int) -> dict[str, Any]:
        """Why message `msg_id` is (not) being delivered: `state` (`ready`, `delayed`, `leased`,
        `gone`), `why` (a sentence) and what applies: `holder`, `lease_deadline`, `ready_at`,
        `last_error`, ... (protocol.md 2.3)."""
        return await self._call(admin_ops.explain(msg_id))

    async def history(self, msg_id: int) -> list[dict[str, Any]]:
        """The life of message `msg_id` from the broker's log, oldest first: maps with `at`
        (Unix s), `event` (`published`, `leased`, `nacked`, `acked`, ...) and its fields."""
        return await self._call(admin_ops.history(msg_id))


class SyncAdmin:
    """Administration methods of the blocking `Client`; the same as `AsyncAdmin`'s."""

    __slots__ = ()

    def _call(self, request: Request[T]) -> T:
        raise NotImplementedError  # the client's

    def declare(
        self,
        queue: str,
        *,
        retention_s: float | None = None,
        lease_s: float | None = None,
        max_deliveries: int | None = None,
        dead_letter: str | None = None,
        dedup_window_s: float | None = None,
    ) -> dict[str, Any]:
        """Create `queue` or change the settings given (see `AsyncAdmin.declare`); returns them all."""
        return self._call(
            admin_ops.declare(
                queue,
                retention_s=retention_s,
                lease_s=lease_s,
                max_deliveries=max_deliveries,
                dead_letter=dead_letter,
                dedup_window_s=dedup_window_s,
            )
        )

    def purge(self, queue: str) -> int:
        """Remove every message of `queue`, leased ones included; returns how many."""
        return self._call(admin_ops.purge(queue))

    def delete(self, queue: str) -> int:
        """Purge `queue` and forget it; returns the messages removed. `NotFound` if there is none."""
        return self._call(admin_ops.delete(queue))

    def peek(self, queue: str, count: int = 10) -> list[PeekedMessage]:
        """The next `count` (1..1,000) ready messages of `queue`, in delivery order, not leased."""
        return self._call(admin_ops.peek(queue, count))

    def redrive(self, queue: str, count: int | None = None, to: str | None = None) -> int:
        """Move up to `count` messages of the dead-letter queue `queue` back (or to `to`); returns how many."""
        return self._call(admin_ops.redrive(queue, count, to))

    def bind(self, topic: str, queue: str) -> bool:
        """Give `queue` a copy of every `fanout` to `topic`; False if it was bound already."""
        return self._call(admin_ops.bind(topic, queue))

    def unbind(self, topic: str, queue: str) -> bool:
        """Undo a `bind`; False if `queue` was not bound to `topic`."""
        return self._call(admin_ops.unbind(topic, queue))

    def bindings(self, topic: str | None = None) -> dict[str, list[str]]:
        """Topic -> its bound queues (sorted), for `topic` or for every topic."""
        return self._call(admin_ops.bindings(topic))

    def explain(self, msg_id: int) -> dict[str, Any]:
        """Why message `msg_id` is (not) being delivered: `state`, `why` and what applies."""
        return self._call(admin_ops.explain(msg_id))

    def history(self, msg_id: int) -> list[dict[str, Any]]:
        """The life of message `msg_id` from the broker's log, oldest first."""
        return self._call(admin_ops.history(msg_id))
