"""A consumer loop: lease, handle, ack or nack, repeat.

Each of `concurrency` workers long-polls `get` for up to `prefetch` messages, runs the handler
on each in turn, nacks a message at once when its handler raises (the error is logged), and acks
the ones that succeeded when the batch is done: with one `ack` for a single message, with one
batch `ack` for several. A message is acked only after its handler succeeded. A budget shared by
the workers is claimed *before* each `get`, so with `max_messages` no worker leases a message it
may not handle (a leased but unhandled message would sit invisible until its lease expired).

With a client that reconnects (`connect(..., reconnect=True)`), a call that fails because the
connection dropped is tried again on the next connection: a `get` simply polls again, and an
`ack` or `nack` is repeated, which works if the session was resumed (its leases survived) and
fails with `LeaseLost` (logged, not raised) if not. A group member consumes like anyone else:
the broker decides which messages its `get` may take.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mq_client.aio import AsyncClient
from mq_client.errors import LeaseLost, MQError, NotYourLease
from mq_client.limits import MAX_GET_MESSAGES
from mq_client.message import Message

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[object]] | Callable[[Message], object]
"""An `async def` or plain function taking a `Message`; its return value is ignored."""

@dataclass(slots=True)
class _Budget:
    """How many messages the workers may still lease; None means no limit."""

    remaining: int | None
    handled: int = 0

    def claim(self, wanted: int) -> int:
        """Take up to `wanted` messages from the budget; returns how many (0: it is spent)."""
        if self.remaining is None:
            return wanted
        granted = min(wanted, self.remaining)
        self.remaining -= granted
        return granted

    def release(self, unused: int) -> None:
        if self.remaining is not None:
            self.remaining += unused


async def consume(
    client: AsyncClient,
    queue: str,
    handler: Handler,
    *,
    concurrency: int = 1,
    prefetch: int = 1,
    lease_s: float | None = None,
    wait_s: float = 5.0,
    max_messages: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Handle messages of `queue` until `max_messages` are handled or `stop` is set.

    Returns the number of messages handled (acked or nacked). Each of `concurrency` workers
    leases up to `prefetch` messages (1..1,000) per `get`, handles them one after the other and
    acks those that succeeded with one request: a larger `prefetch` costs the broker far fewer
    round trips and commits per message. `lease_s` is the lease in seconds (queue default if
    None), counted from the `get`: it must cover the handling of the whole batch, or the later
    messages go to another consumer. An `async def` handler runs on the loop; a plain function
    runs in a worker thread (`asyncio.to_thread`) so it cannot block the loop. When `stop` is
    set, each worker finishes the message it is handling, acks its batch so far, and returns
    within about `wait_s` seconds (its long-poll); messages it leased but has not started are
    given back unhandled with `nack`. Client errors (`ConnectionLost`, `ShuttingDown`, ...)
    stop every worker and are raised, unless the client reconnects: then the failed call is
    tried again once it has.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not 1 <= prefetch <= MAX_GET_MESSAGES:
        raise ValueError(f"prefetch must be 1..{MAX_GET_MESSAGES}, got {prefetch}")
    if max_messages is not None and max_messages < 0:
        raise ValueError(f"max_messages must be at least 0, got {max_messages}")
    budget = _Budget(max_messages)
    stopping = stop if stop is not None else asyncio.Event()

    async def worker() -> None:
        while not stopping.is_set() and (claimed := budget.claim(prefetch)):
            try:
                msgs = await client.get(queue, lease_s=lease_s, wait_s=wait_s, max=claimed)
            except MQError as exc:
                budget.release(claimed)
                if not _recoverable(client, exc):
                    raise
                log.warning("get from queue %r failed: %s; polling again once reconnected", queue, exc)
                continue
            except BaseException:
                budget.release(claimed)
                raise
            budget.release(claimed - len(msgs))
            await _handle_batch(client, handler, msgs, stopping, budget)

    tasks = [asyncio.create_task(worker(), name=f"mq-consume-{queue}-{i}") for i in range(concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        # One worker failed or consume was cancelled: the others end with it, none outlives it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return budget.handled


async def _handle_batch(
    client: AsyncClient, handler: Handler, msgs: list[Message], stopping: asyncio.Event, budget: _Budget
) -> None:
    """Handle `msgs` in order, nack each failure at once, then ack the successes together."""
    succeeded: list[Message] = []
    for i, msg in enumerate(msgs):
        if stopping.is_set():
            unhandled = msgs[i:]
            budget.release(len(unhandled))
            for m in unhandled:
                await _settle(client, client.nack, m)
            break
        if await _run(handler, msg):
            succeeded.append(msg)
        else:
            await _settle(client, client.nack, msg)
        budget.handled += 1
    if len(succeeded) == 1:
        await _settle(client, client.ack, succeeded[0])
    elif succeeded:
        await _ack_many(client, succeeded)


async def _run(handler: Handler, msg: Message) -> bool:
    """Run the handler on `msg`; False (and the error logged) if it raised."""
    try:
        if inspect.iscoroutinefunction(handler):
            await handler(msg)
        else:
            result = await asyncio.to_thread(handler, msg)
            if inspect.isawaitable(result):  # e.g. a callable object with an async __call__
                await result
    except Exception:
        log.exception(
            "handler failed on message %d (receipt %s) of queue %r; nacking it",
            msg.msg_id,
            msg.receipt,
            msg.queue,
        )
        return False
    return True


def _recoverable(client: AsyncClient, exc: MQError) -> bool:
    # fatal: the connection is gone with this error; a reconnecting client will bring another.
    return exc.fatal and client.will_reconnect


async def _settle(client: AsyncClient, settle: Callable[[Message], Awaitable[None]], msg: Message) -> None:
    """`settle` (ack or nack) the message, again after each reconnect if the connection drops.

    A lost lease is the broker saying the message went (or will go) to someone else: at-least-
    once delivery covers it, so it must not stop the consumer. Anything else propagates.
    """
    what = settle.__name__
    while True:
        try:
            await settle(msg)
            return
        except (LeaseLost, NotYourLease) as exc:
            log.warning("%s of message %d (receipt %s) failed: %s", what, msg.msg_id, msg.receipt, exc)
            return
        except MQError as exc:
            if not _recoverable(client, exc):
                raise
            log.warning("%s of message %d failed: %s; trying again once reconnected", what, msg.msg_id, exc)


async def _ack_many(client: AsyncClient, msgs: list[Message]) -> None:
    """Ack `msgs` with one batch ack, as `_settle` acks one: lost leases are logged, not raised."""
    while True:
        try:
            result = await client.ack_many(msgs)
            break
        except MQError as exc:
            if not _recoverable(client, exc):
                raise
            log.warning("ack of %d messages failed: %s; trying again once reconnected", len(msgs), exc)
    for failure in result.failed:
        error = failure.error()
        if not isinstance(error, LeaseLost | NotYourLease):
            raise error
        log.warning("ack of receipt %s failed: %s", failure.receipt, error)
