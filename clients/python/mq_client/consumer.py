"""A consumer loop: lease, handle, ack or nack, repeat.

Each of `concurrency` workers long-polls `get` for up to `prefetch` messages, runs the handler
on each in turn, nacks a message at once when its handler raises, and acks the ones that
succeeded when the batch is done: with one `ack` for a single message, with one batch `ack` for
several. A failure is one log line (the traceback only at debug level), and its nack carries the
exception's text (kept with the message: `peek`, `explain`, `history`) and a retry delay that
grows with the message's deliveries (`Retry`: exponential backoff with jitter), so a job that
keeps failing does not spin. While a batch is being handled, a background task extends the
leases of its messages not yet settled (`touch`, every third of the lease), so a long handler
keeps its message. A message is acked only after its handler succeeded. A budget shared by
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
from mq_client.handling import Budget, check_arguments, error_text, log_failure, touch_interval_s
from mq_client.message import Message
from mq_client.retry import JOB_RETRY, Retry

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[object]] | Callable[[Message], object]
"""An `async def` or plain function taking a `Message`; its return value is ignored."""


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
    retry: Retry | None = JOB_RETRY,
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
    given back unhandled with `nack`. A message whose handler raised is nacked with the
    exception's text and, with `retry`, a delay (None: ready again at once). Client errors
    (`ConnectionLost`, `ShuttingDown`, ...) stop every worker and are raised, unless the client
    reconnects: then the failed call is tried again once it has.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    check_arguments(prefetch, max_messages)
    budget = Budget(max_messages)
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
            await _handle_batch(client, handler, msgs, stopping, budget, _Settings(lease_s, retry))

    tasks = [asyncio.create_task(worker(), name=f"mq-consume-{queue}-{i}") for i in range(concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        # One worker failed or consume was cancelled: the others end with it, none outlives it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return budget.handled


@dataclass(frozen=True, slots=True)
class _Settings:
    lease_s: float | None
    retry: Retry | None


async def _handle_batch(  # noqa: PLR0917  # the worker's state, passed down once per batch
    client: AsyncClient,
    handler: Handler,
    msgs: list[Message],
    stopping: asyncio.Event,
    budget: Budget,
    settings: _Settings,
) -> None:
    """Handle `msgs` in order, nack each failure at once, then ack the successes together."""
    keeper = _LeaseKeeper(client, settings.lease_s, msgs)
    touching = asyncio.create_task(keeper.run(), name="mq-consume-touch")
    try:
        succeeded: list[Message] = []
        for i, msg in enumerate(msgs):
            if stopping.is_set():
                unhandled = msgs[i:]
                budget.release(len(unhandled))
                for m in unhandled:
                    await _settle(client, "nack", client.nack, m)
                break
            error = await _run(handler, msg)
            if error is None:
                succeeded.append(msg)
            else:
                await _give_back(client, msg, error, settings.retry)
                keeper.settled(msg)
            budget.handled += 1
        if len(succeeded) == 1:
            await _settle(client, "ack", client.ack, succeeded[0])
        elif succeeded:
            await _ack_many(client, succeeded)
    finally:
        touching.cancel()
        await asyncio.gather(touching, return_exceptions=True)


async def _run(handler: Handler, msg: Message) -> Exception | None:
    """Run the handler on `msg`; what it raised, or None."""
    try:
        if inspect.iscoroutinefunction(handler):
            await handler(msg)
        else:
            result = await asyncio.to_thread(handler, msg)
            if inspect.isawaitable(result):  # e.g. a callable object with an async __call__
                await result
    except Exception as exc:
        return exc
    return None


async def _give_back(client: AsyncClient, msg: Message, error: Exception, retry: Retry | None) -> None:
    """Nack a message whose handler raised `error`, saying why, after one line of log."""
    delay_s = retry.delay_s(msg.deliveries) if retry is not None else None
    text = error_text(error)
    log_failure(log, msg, error, text, delay_s)

    def nack(m: Message) -> Awaitable[None]:
        return client.nack(m, delay_s=delay_s, error=text)

    await _settle(client, "nack", nack, msg)


class _LeaseKeeper:
    """Extends the leases of a batch's messages until they are settled, a third of a lease ahead."""

    def __init__(self, client: AsyncClient, lease_s: float | None, msgs: list[Message]) -> None:
        self._client = client
        self._lease_s = lease_s
        self._live = {m.receipt: m for m in msgs}

    def settled(self, msg: Message) -> None:
        self._live.pop(msg.receipt, None)

    async def run(self) -> None:
        interval_s = touch_interval_s(self._lease_s)
        while self._live:
            await asyncio.sleep(interval_s)
            live = list(self._live.values())
            answers = await asyncio.gather(*(self._client.touch(m, self._lease_s) for m in live),
                                           return_exceptions=True)
            leases_s = [a for a in answers if isinstance(a, float)]
            for msg, answer in zip(live, answers, strict=True):
                if isinstance(answer, BaseException):
                    # Lost: it went (or goes) to someone else; anything else: try at the next round.
                    log.warning("could not extend the lease of message %d (receipt %s): %s",
                                msg.msg_id, msg.receipt, answer)
                    if isinstance(answer, LeaseLost | NotYourLease):
                        self.settled(msg)
            if leases_s:
                interval_s = min(leases_s) / 3


def _recoverable(client: AsyncClient, exc: MQError) -> bool:
    # fatal: the connection is gone with this error; a reconnecting client will bring another.
    return exc.fatal and client.will_reconnect


async def _settle(
    client: AsyncClient, what: str, settle: Callable[[Message], Awaitable[None]], msg: Message
) -> None:
    """`settle` (`what`: ack or nack) the message, again after each reconnect if the connection drops.

    A lost lease is the broker saying the message went (or will go) to someone else: at-least-
    once delivery covers it, so it must not stop the consumer. Anything else propagates.
    """
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
