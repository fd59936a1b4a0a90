"""What the two job runners share: `consume` (asyncio) and `consume_blocking` (threads).

Pure: no sockets, no event loop. The text a failed message is nacked with, the one log line a
failure gets, how often a running handler's lease is extended, and the budget of messages
the runner may still lease. The retry delay itself is `Retry` (retry.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mq_client.limits import MAX_GET_MESSAGES
from mq_client.message import Message

MAX_ERROR_BYTES = 4096
"""The longest `nack` error the broker takes (protocol.md section 7); longer texts are cut."""
FIRST_TOUCH_S = 1.0
"""Without a `lease_s`, when a handled message's lease is first extended, in seconds (the
queue's lease is not known before; `touch` answers it, and the next ones come at a third)."""


def check_arguments(prefetch: int, max_messages: int | None) -> None:
    """Raise ValueError, naming the bound, for a `prefetch` or `max_messages` out of bounds."""
    if not 1 <= prefetch <= MAX_GET_MESSAGES:
        raise ValueError(f"prefetch must be 1..{MAX_GET_MESSAGES}, got {prefetch}")
    if max_messages is not None and max_messages < 0:
        raise ValueError(f"max_messages must be at least 0, got {max_messages}")


def error_text(exc: BaseException) -> str:
    """What a nack says about `exc`: its type and message, cut to `MAX_ERROR_BYTES` of UTF-8."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.encode()[:MAX_ERROR_BYTES].decode(errors="ignore")


def log_failure(log: logging.Logger, msg: Message, error: Exception, text: str, delay_s: float | None) -> None:
    """One error line for a handler that raised `error` (its traceback only at debug level)."""
    when = f"in {delay_s:.1f} s" if delay_s else "now"
    log.error("handler failed on message %d (receipt %s, delivery %d) of queue %r: %s; it is delivered again %s",
              msg.msg_id, msg.receipt, msg.deliveries, msg.queue, text, when)
    log.debug("traceback of the failure on message %d", msg.msg_id, exc_info=error)


def touch_interval_s(lease_s: float | None) -> float:
    """Seconds between two extensions of a lease of `lease_s` (the queue's default if None):
    a third of it, so that one late or failed `touch` still leaves time for the next."""
    return lease_s / 3 if lease_s is not None else FIRST_TOUCH_S


@dataclass(slots=True)
class Budget:
    """How many messages a runner may still lease (None: no limit), and how many it handled.

    Claimed *before* each `get`, so with `max_messages` no worker leases a message it may not
    handle (a leased but unhandled message would sit invisible until its lease expired).
    """

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
