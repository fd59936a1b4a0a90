"""The blocking job runner: `consume_blocking`, the twin of `consume` for the blocking `Client`.

The calling thread leases up to `prefetch` messages (`get`), runs the handler on each in turn,
nacks a failure at once (with the exception's text and a `Retry` delay; one log line), and acks
the batch's successes together, as `consume` does; what is shared lives in handling.py and
retry.py.

Lease extension, and why it is safe. While a batch is being handled, one keeper thread (started
for the run, stopped and joined before it returns) extends the leases of the messages not yet
settled with `touch`, every third of a lease. It touches through the *same* client: a lease
belongs to its holder, the session (or connection) that took it, and `touch` from anyone else
fails with `NOT_YOUR_LEASE` (protocol.md section 4); a second connection saying `hello` with the
session's token would take the session over and close ours (section 4.1). The client makes this
safe by letting one call through at a time (sync.py): a touch waits while the handler's own
call on the client is in flight and never interleaves with it. So a handler may use the client
it was given; one that long-polls on it (`get` with a long `wait_s`) holds touches back for that
long, so keep such waits shorter than a third of the lease, or use another client for them.

With `reconnect=True`, a call that failed because the connection dropped is made again once the
client has reconnected (at its next call): a `get` polls again, an `ack` or `nack` is repeated,
which works if the session was resumed (its leases survived) and fails with `LeaseLost` (logged,
not raised) if not. When the client gives up reconnecting, the error is raised.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable

from mq_client.errors import LeaseLost, MQError, NotYourLease
from mq_client.handling import Budget, check_arguments, error_text, log_failure, touch_interval_s
from mq_client.message import Message
from mq_client.retry import JOB_RETRY, Retry
from mq_client.sync import Client

log = logging.getLogger(__name__)

BlockingHandler = Callable[[Message], object]
"""A plain function taking a `Message`, run in the calling thread; its return value is ignored."""


def consume_blocking(
    client: Client,
    queue: str,
    handler: BlockingHandler,
    *,
    prefetch: int = 1,
    lease_s: float | None = None,
    wait_s: float = 5.0,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
    retry: Retry | None = JOB_RETRY,
) -> int:
    """Handle messages of `queue` in this thread until `max_messages` are handled or `stop` is set.

    Returns the number of messages handled (acked or nacked). The arguments are those of
    `consume` but for `concurrency` (run one client per thread for more): each `get` leases up
    to `prefetch` messages (1..1,000), handled one after the other and acked together; `lease_s`
    is the lease in seconds (queue default if None), extended in the background while a handler
    runs; `wait_s` is the long-poll. When `stop` is set (from another thread or a signal
    handler), the run finishes the message it is handling, acks its batch so far, gives back the
    batch's unstarted messages with `nack`, and returns within about `wait_s` seconds. A message
    whose handler raised is nacked with the exception's text and, with `retry`, a delay (None:
    ready again at once). Client errors (`ConnectionLost`, `ShuttingDown`, ...) are raised,
    unless the client reconnects: then the failed call is made again once it has.
    """
    if inspect.iscoroutinefunction(handler):
        raise TypeError("an async handler needs the event loop: use consume() with an AsyncClient")
    check_arguments(prefetch, max_messages)
    budget = Budget(max_messages)
    stopping = stop if stop is not None else threading.Event()
    keeper = _LeaseKeeper(client, lease_s)
    try:
        while not stopping.is_set() and (claimed := budget.claim(prefetch)):
            try:
                msgs = client.get(queue, lease_s=lease_s, wait_s=wait_s, max=claimed)
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
            _handle_batch(client, handler, msgs, stopping, budget, keeper, retry)
    finally:
        keeper.stop()
    return budget.handled


def _handle_batch(  # noqa: PLR0917  # the run's state, passed down once per batch
    client: Client,
    handler: BlockingHandler,
    msgs: list[Message],
    stopping: threading.Event,
    budget: Budget,
    keeper: _LeaseKeeper,
    retry: Retry | None,
) -> None:
    """Handle `msgs` in order, nack each failure at once, then ack the successes together."""
    keeper.keep(msgs)
    try:
        succeeded: list[Message] = []
        for i, msg in enumerate(msgs):
            if stopping.is_set():
                unhandled = msgs[i:]
                budget.release(len(unhandled))
                for m in unhandled:
                    keeper.settled(m)
                    _settle(client, "nack", client.nack, m)
                break
            try:
                handler(msg)
            except Exception as exc:
                keeper.settled(msg)
                _give_back(client, msg, exc, retry)
            else:
                succeeded.append(msg)
            budget.handled += 1
        keeper.keep([])
        if len(succeeded) == 1:
            _settle(client, "ack", client.ack, succeeded[0])
        elif succeeded:
            _ack_many(client, succeeded)
    finally:
        keeper.keep([])


def _give_back(client: Client, msg: Message, error: Exception, retry: Retry | None) -> None:
    """Nack a message whose handler raised `error`, saying why, after one line of log."""
    delay_s = retry.delay_s(msg.deliveries) if retry is not None else None
    text = error_text(error)
    log_failure(log, msg, error, text, delay_s)
    _settle(client, "nack", lambda m: client.nack(m, delay_s=delay_s, error=text), msg)


def _recoverable(client: Client, exc: MQError) -> bool:
    # fatal: the connection is gone with this error; a reconnecting client makes another.
    return exc.fatal and client.will_reconnect


def _settle(client: Client, what: str, settle: Callable[[Message], None], msg: Message) -> None:
    """`settle` (`what`: ack or nack) the message, again after a reconnect if the connection drops.

    A lost lease is the broker saying the message went (or will go) to someone else: at-least-
    once delivery covers it, so it must not stop the consumer. Anything else propagates.
    """
    while True:
        try:
            settle(msg)
            return
        except (LeaseLost, NotYourLease) as exc:
            log.warning("%s of message %d (receipt %s) failed: %s", what, msg.msg_id, msg.receipt, exc)
            return
        except MQError as exc:
            if not _recoverable(client, exc):
                raise
            log.warning("%s of message %d failed: %s; trying again once reconnected", what, msg.msg_id, exc)


def _ack_many(client: Client, msgs: list[Message]) -> None:
    """Ack `msgs` with one batch ack, as `_settle` acks one: lost leases are logged, not raised."""
    while True:
        try:
            result = client.ack_many(msgs)
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


class _LeaseKeeper:
    """A thread that extends the leases of the batch being handled, a third of a lease ahead.

    Its thread starts with the first batch and ends at `stop()`. Touches go out without the
    keeper's own lock held: a touch may wait for the client while the calling thread, inside a
    call, settles a message here.
    """

    def __init__(self, client: Client, lease_s: float | None) -> None:
        self._client = client
        self._lease_s = lease_s
        self._changed = threading.Condition()  # guards the fields below
        self._live: dict[str, Message] = {}
        self._due_s = 0.0  # monotonic time of the next round of touches
        self._interval_s = touch_interval_s(lease_s)
        self._stopped = False
        self._thread: threading.Thread | None = None

    def keep(self, msgs: list[Message]) -> None:
        """Extend the leases of `msgs` from now on (an empty list: of none)."""
        with self._changed:
            self._live = {m.receipt: m for m in msgs}
            self._interval_s = touch_interval_s(self._lease_s)
            self._due_s = time.monotonic() + self._interval_s
            self._changed.notify()
        if msgs and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mq-consume-touch", daemon=True)
            self._thread.start()

    def settled(self, msg: Message) -> None:
        with self._changed:
            self._live.pop(msg.receipt, None)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                wait_s = self._due_s - time.monotonic()
                if not self._live or wait_s > 0:
                    self._changed.wait(None if not self._live else wait_s)
                    continue
                live = list(self._live.values())
                self._changed.release()
                try:
                    leases_s = [lease for msg in live if (lease := self._touch(msg)) is not None]
                finally:
                    self._changed.acquire()
                if leases_s:
                    self._interval_s = min(leases_s) / 3
                self._due_s = time.monotonic() + self._interval_s

    def _touch(self, msg: Message) -> float | None:
        """Extend one lease, unless it was settled meanwhile; the new lease in seconds, or None."""
        with self._changed:
            if msg.receipt not in self._live:
                return None
        try:
            return self._client.touch(msg, self._lease_s)
        except (MQError, OSError) as exc:  # the keeper outlives a failed touch; the handler goes on
            with self._changed:
                if msg.receipt not in self._live:
                    return None  # settled while the touch was on its way: nothing was lost
                if isinstance(exc, LeaseLost | NotYourLease):
                    self._live.pop(msg.receipt, None)  # it went (or goes) to someone else
            log.warning("could not extend the lease of message %d (receipt %s): %s", msg.msg_id, msg.receipt, exc)
            return None
