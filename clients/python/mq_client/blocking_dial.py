"""How the blocking client opens its connections: the first one and, with `reconnect=True`,
each one after a drop.

`Dialer` connects (TLS when asked) and says `auth` when there are credentials, so every new
connection is authenticated before anything else goes out on it. `redial` tries again and
again, spaced by a `Retry` backoff, until a new connection is up and `restore` (the session's
`hello`, its groups' `join`s) has run on it, or `timeout_s` has passed: the attempts are bounded
in time, and so in number. A refusal that retrying cannot fix (a wrong secret; `NAME_TAKEN` on a
re-join) is raised at once.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mq_client import ops
from mq_client.blocking_link import BlockingLink
from mq_client.errors import ConnectionLost, MQError
from mq_client.request import check_reply
from mq_client.retry import Retry
from mq_client.url import Address

log = logging.getLogger("mq_client.sync")


@dataclass(frozen=True, slots=True)
class Dialer:
    """Opens authenticated connections to one broker."""

    address: Address
    login: tuple[str, str] | None = field(repr=False)
    context: ssl.SSLContext | None
    connect_timeout_s: float
    max_frame_bytes: int

    def dial(self, timeout_s: float | None = None) -> BlockingLink:
        """A new authenticated link, within `timeout_s` seconds (at most `connect_timeout_s`).

        Raises `ConnectionLost` if the broker cannot be reached, `Unauthenticated` if it refuses
        the credentials.
        """
        link = BlockingLink(self.socket(timeout_s))
        self.authenticate(link)
        return link

    def socket(self, timeout_s: float | None = None) -> socket.socket:
        """A connected socket (TLS handshake done), within `timeout_s` (at most `connect_timeout_s`)."""
        wait_s = self.connect_timeout_s if timeout_s is None else min(timeout_s, self.connect_timeout_s)
        try:
            sock = socket.create_connection((self.address.host, self.address.port), timeout=wait_s)
            # Small request frames must not wait for Nagle's algorithm.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.address.host)  # handshakes now
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.address}: {exc}") from exc
        return sock

    def authenticate(self, link: BlockingLink) -> None:
        """Say `auth` first on a new `link`, if there are credentials; shut it if that fails."""
        if self.login is None:
            return
        try:
            request = ops.auth(*self.login)
            (reply,) = link.exchange([request], self.connect_timeout_s, self.max_frame_bytes)
            request.parse(check_reply(reply))
        except BaseException:
            link.shut(ConnectionLost("authentication failed"))
            raise


def redial(
    dialer: Dialer,
    restore: Callable[[BlockingLink], None],
    *,
    timeout_s: float,
    backoff: Retry,
    sleep: Callable[[float], None] = time.sleep,
) -> BlockingLink:
    """A new link with `restore(link)` done on it, tried with `backoff` for up to `timeout_s` s.

    Raises `ConnectionLost` when the time is up, and a broker's refusal that is not fatal (so
    would come again on every new connection) at once.
    """
    deadline = time.monotonic() + timeout_s
    delays = backoff.delays()
    last: MQError | None = None
    attempt = 0
    while True:
        delay_s = next(delays)
        if time.monotonic() + delay_s >= deadline:
            raise ConnectionLost(f"could not reconnect to {dialer.address} within reconnect_timeout_s={timeout_s} "
                                 f"({attempt} attempts; the last said: {last})")
        attempt += 1
        sleep(delay_s)
        try:
            link = dialer.dial(deadline - time.monotonic())
        except ConnectionLost as exc:
            log.debug("mq reconnect attempt %d failed: %s", attempt, exc)
            last = exc
            continue
        try:
            restore(link)
        except MQError as exc:
            link.shut(ConnectionLost("reconnect abandoned"))
            if not exc.fatal:
                raise  # the broker refused, and would again
            log.debug("mq connection lost while restoring the session: %s", exc)
            last = exc
            continue
        except BaseException:
            link.shut(ConnectionLost("reconnect abandoned"))
            raise
        return link
