"""A kombu transport for mq, so Celery (or any kombu user) can use mq as its broker.

Importing this module registers the `mq` scheme with kombu: then `Celery(broker="mq://host:port")`
and `kombu.Connection("mq://host:port")` need nothing else. kombu finds transports only in its
`kombu.transport.TRANSPORT_ALIASES` table (it has entry points for serializers and matchers, not
for transports), and refuses an import path as a URL scheme, so one import is the registration.

Theory of operation, on kombu's virtual transport (as its SQS transport maps SQS):

- **A delivery is an mq lease.** `basic_consume` subscribes (`sub`, push): the broker leases up
  to the channel's prefetch count to this connection's consumer session and pushes them; no
  polling. `drain_events` waits on a thread-safe inbox that the subscriptions fill. The kombu
  delivery tag is the mq receipt.
- **ack is ack; reject is nack.** `basic_reject(requeue=True)` nacks (ready again at once);
  `requeue=False` acks, which discards the message as AMQP does without a dead-letter exchange.
  Nothing is ever republished by the client: kombu's "restore unacked" is off, because the
  broker gives leases back itself when the session ends (`quit`, or a worker killed: its
  heartbeats stop and its leases go back after the broker's grace period, not after the lease).
- **visibility_timeout is the lease** (transport option, seconds, default 3600). It only matters
  for a worker that is alive but stuck: a dead one loses its leases through its session.
- **ETA and countdown use `not_before`.** A Celery message whose `eta` header lies in the future
  is published with `not_before`, so the broker keeps it (durably) and delivers it when due; the
  worker then runs it at once instead of holding it in memory under a lease.
- **Priority** 0..9 as in AMQP (higher first); kombu's `expiration` becomes the message's TTL.
- **Exchanges** are kombu's in-process routing (direct and topic), as in the SQS transport:
  a publish routes to queues this process declared. Fan-out is not offered (see README).

Credentials and TLS are kombu's own: the URL's user and password (`mq://user:secret@host`) are
said with `auth`, and `broker_use_ssl` (True, or a dict of `ca_certs`, `certfile`, `keyfile`)
makes it `mqs://`, verifying the broker's certificate (against `ca_certs`, else the system's CAs).

Messages are stored as kombu's JSON envelope (body base64, headers, properties). Queue names
that mq does not allow are escaped: every character other than letters, digits, `_`, `-` and
`.` becomes `:xx` per UTF-8 byte.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as threadsafe
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import virtual
from kombu.utils.json import dumps, loads

from mq_client.client_thread import ClientThread
from mq_client.errors import ConnectionLost, MQError, NotFound, Retryable, ShuttingDown
from mq_client.message import Message
from mq_client.url import DEFAULT_PORT, SCHEME, TLS_SCHEME

DEFAULT_VISIBILITY_TIMEOUT_S = 3600.0
"""The lease of a delivery unless `visibility_timeout` is set, in seconds."""
MAX_PRIORITY = 9
MAX_PREFETCH = 10_000
"""The largest `prefetch` of a `sub` (protocol.md section 7)."""
UNREADABLE_RETRY_S = 60.0
"""How long a message that is not a kombu envelope waits before it is delivered again, in seconds:
it is nacked with the reason rather than handed to kombu, which would raise in the worker's loop
(and the message, given back when the worker died, would stop every worker in turn)."""
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_consumers = count(1)
log = logging.getLogger(__name__)


def mq_name(kombu_name: str) -> str:
    """The mq queue name for a kombu queue name: unchanged if mq allows it, escaped otherwise."""
    escaped = "".join(
        c if c in _NAME_CHARS else "".join(f":{b:02x}" for b in c.encode()) for c in kombu_name
    )
    return escaped or ":"  # kombu's anonymous queue name is "", mq's names are never empty


def publish_options(message: dict[str, Any], now_s: float) -> dict[str, Any]:
    """mq publish options for a kombu message: priority, TTL, and `not_before` for a future ETA."""
    properties = message.get("properties") or {}
    options: dict[str, Any] = {}
    priority = properties.get("priority")
    if isinstance(priority, int) and priority > 0:
        options["priority"] = min(priority, MAX_PRIORITY)
    expiration = properties.get("expiration")  # AMQP style: milliseconds, as a string
    if expiration is not None:
        options["ttl_s"] = max(float(expiration) / 1000, 0.001)
    eta = _eta_s(message.get("headers") or {})
    if eta is not None and eta > now_s:
        options["not_before"] = eta
    return options


def _eta_s(headers: dict[str, Any]) -> float | None:
    """The Unix time of a Celery message's `eta` header (ISO 8601), or None."""
    eta = headers.get("eta")
    if not isinstance(eta, str):
        return None
    try:
        when = datetime.fromisoformat(eta)
    except ValueError:
        return None
    if when.tzinfo is None:  # Celery sends aware times; a naive one is taken as UTC
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how a kombu connection reaches its broker."""

    url: str  # without credentials
    user: str | None = None
    secret: str | None = field(default=None, repr=False)  # never printed
    ssl_context: ssl.SSLContext | None = None


def endpoint(conninfo: Any) -> Endpoint:
    """The broker of a `kombu.Connection`: its host and port, user and password, and TLS
    (`ssl`: True, or a dict of `ca_certs`, `certfile` and `keyfile`, as `broker_use_ssl`)."""
    tls = conninfo.ssl
    host = conninfo.hostname or "127.0.0.1"
    url = f"{TLS_SCHEME if tls else SCHEME}://{host}:{conninfo.port or DEFAULT_PORT}"
    context = None
    if isinstance(tls, dict):
        context = ssl.create_default_context(cafile=tls.get("ca_certs"))
        if tls.get("certfile"):
            context.load_cert_chain(tls["certfile"], tls.get("keyfile"))
    user, secret = conninfo.userid or None, conninfo.password or None
    if (user is None) != (secret is None):
        raise ValueError("the broker URL needs both a user and a password, or neither: mq://user:secret@host:port")
    return Endpoint(url, user, secret, context)


class Unreadable(ValueError):
    """A delivery whose body is not a kombu envelope (something other than kombu published it)."""


def _payload(msg: Message) -> dict[str, Any]:
    """The kombu message dict of an mq delivery: its envelope, with the receipt as delivery tag.
    Raises `Unreadable` for a body that is not a kombu envelope."""
    try:
        payload = loads(msg.body)  # type: ignore[no-untyped-call]
    except ValueError as exc:  # JSON's errors and undecodable UTF-8 are ValueErrors
        raise Unreadable(f"not a kombu message: {exc}") from None
    properties = payload.setdefault("properties", {}) if isinstance(payload, dict) else None
    info = properties.setdefault("delivery_info", {}) if isinstance(properties, dict) else None
    if not isinstance(payload, dict) or not isinstance(properties, dict) or not isinstance(info, dict):
        raise Unreadable("not a kombu message: its JSON is not a kombu envelope")
    properties["delivery_tag"] = msg.receipt
    info.update(redelivered=msg.deliveries > 1, mq_msg_id=msg.msg_id, mq_deliveries=msg.deliveries)
    envelope: dict[str, Any] = payload
    return envelope


# kombu ships py.typed but leaves most of its virtual transport unannotated: calls into it carry
# `type: ignore[no-untyped-call]`, and class attributes it typed narrowly `[assignment]`.
class Channel(virtual.Channel):
    """A kombu channel on the transport's mq client; see the module docstring."""

    do_restore = False  # the broker gives leases back; a client republishing them would duplicate
    from_transport_options = (*virtual.Channel.from_transport_options, "visibility_timeout")  # type: ignore[assignment]
    visibility_timeout = DEFAULT_VISIBILITY_TIMEOUT_S

    @property
    def _mq(self) -> ClientThread:
        mq: ClientThread = self.connection.mq
        return mq

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        body = dumps(message).encode()  # type: ignore[no-untyped-call]
        self._mq.run(self._mq.client.publish(mq_name(queue), body, **publish_options(message, time.time())))

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        self.connection.ensure_session()
        msgs = self._mq.run(self._mq.client.get(mq_name(queue), lease_s=self.visibility_timeout))
        payload: dict[str, Any] | None = self.connection.readable(msgs[0]) if msgs else None
        if payload is None:
            raise threadsafe.Empty()
        return payload

    def _size(self, queue: str) -> int:
        stats = self._mq.run(self._mq.client.stats(mq_name(queue)))
        ready: int = stats["queues"].get(mq_name(queue), {}).get("ready", 0)
        return ready

    def _purge(self, queue: str) -> int:
        purged: int = self._mq.run(self._mq.client.purge(mq_name(queue)))
        return purged

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(NotFound):
            self._mq.run(self._mq.client.delete(mq_name(queue)))

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        self._mq.run(self._mq.client.declare(mq_name(queue)))

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return mq_name(queue) in self._mq.run(self._mq.client.queues())

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        tag = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)  # type: ignore[no-untyped-call]
        prefetch = self.qos.prefetch_count
        self.connection.subscribe(queue, min(prefetch, MAX_PREFETCH) or None, self.visibility_timeout, no_ack)
        return tag

    def basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        if queue is not None and self.connection is not None:
            self.connection.unsubscribe(queue)
        return super().basic_cancel(consumer_tag)  # type: ignore[no-untyped-call]

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        try:
            self._mq.run(self._mq.client.ack(delivery_tag))
        finally:
            super().basic_ack(delivery_tag)  # type: ignore[no-untyped-call]

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            if requeue:
                self._mq.run(self._mq.client.nack(delivery_tag))
            else:
                self._mq.run(self._mq.client.ack(delivery_tag))
        finally:
            self.qos.ack(delivery_tag)  # forget it; the base class would republish it on requeue

    def basic_recover(self, requeue: bool = False) -> None:
        if not requeue:
            raise NotImplementedError("mq does not support recover(requeue=False)")
        self._give_back_unacked()

    def close(self) -> None:
        if not self.closed and self.connection is not None:
            self._give_back_unacked()
        super().close()  # type: ignore[no-untyped-call]

    def _give_back_unacked(self) -> None:
        """Nack every delivery of this channel not yet acked, so it goes out again at once."""
        qos = self.qos
        qos._flush()
        for tag in list(qos._delivered):
            self.basic_reject(tag, requeue=True)


class Transport(virtual.Transport):
    """kombu's `mq` transport: one reconnecting mq client per kombu connection."""

    Channel = Channel
    default_port = DEFAULT_PORT  # type: ignore[assignment]  # kombu types it as None
    driver_type = "mq"
    driver_name = "mq-client"
    implements = virtual.Transport.implements.extend(asynchronous=False, exchange_type=frozenset(["direct", "topic"]))
    # kombu types these as one-element tuples; they are tuples of exception classes.
    connection_errors = (*virtual.Transport.connection_errors, ConnectionLost, ShuttingDown, Retryable)  # type: ignore[assignment]
    channel_errors = (*virtual.Transport.channel_errors, MQError)  # type: ignore[assignment]

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)  # type: ignore[no-untyped-call]
        self.mq: ClientThread | None = None
        self._inbox: threadsafe.SimpleQueue[tuple[str, Message] | MQError] = threadsafe.SimpleQueue()
        self._no_ack: set[str] = set()
        self._session_started = False

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": self.default_port, "hostname": "127.0.0.1"}

    def establish_connection(self) -> Any:
        if self.mq is None:
            conninfo: Any = self.client
            where = endpoint(conninfo)
            self.mq = ClientThread(
                where.url,
                connect_timeout_s=float(conninfo.connect_timeout or 10),
                user=where.user,
                secret=where.secret,
                ssl_context=where.ssl_context,
            )
        return super().establish_connection()  # type: ignore[no-untyped-call]

    def close_connection(self, connection: Any) -> None:
        try:
            super().close_connection(connection)  # type: ignore[no-untyped-call]
        finally:
            if self.mq is not None:
                self.mq.close()
                self.mq = None

    def ensure_session(self) -> None:
        """Say `hello` once, before the first lease: leases then belong to a session whose
        heartbeats (sent by the client's loop thread) tell the broker this worker lives."""
        if not self._session_started:
            assert self.mq is not None
            options: dict[str, Any] = self.client.transport_options  # type: ignore[union-attr]
            self.mq.run(self.mq.client.hello(_consumer_name(), options.get("heartbeat_s")))
            self._session_started = True

    def subscribe(self, queue: str, prefetch: int | None, lease_s: float, no_ack: bool) -> None:
        """Have the broker push `queue`'s messages into the inbox that `drain_events` reads."""
        assert self.mq is not None
        self.ensure_session()
        if no_ack:
            self._no_ack.add(queue)
        inbox = self._inbox
        self.mq.subscribe(mq_name(queue), prefetch, lease_s, lambda msg: inbox.put((queue, msg)), inbox.put)

    def unsubscribe(self, queue: str) -> None:
        self._no_ack.discard(queue)
        if self.mq is not None:
            self.mq.unsubscribe(mq_name(queue))

    # kombu's two base classes disagree on this signature; the virtual one's is what is called.
    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """Deliver one pushed message to its consumer; TimeoutError (`socket.timeout`) if none
        came within `timeout` seconds (None: wait for one)."""
        try:
            item = self._inbox.get(timeout=timeout)
        except threadsafe.Empty:
            raise TimeoutError() from None
        if isinstance(item, MQError):
            raise item
        queue, msg = item
        payload = self.readable(msg)
        if payload is None:
            return
        if queue in self._no_ack and self.mq is not None:
            self.mq.run(self.mq.client.ack(msg))
        self._deliver(payload, queue)  # type: ignore[no-untyped-call]

    def readable(self, msg: Message) -> dict[str, Any] | None:
        """`msg` as kombu's message dict; None, once it is nacked saying why, if it is not one."""
        try:
            return _payload(msg)
        except Unreadable as exc:
            assert self.mq is not None
            log.error("message %d of queue %r is given back for %.0f s: %s", msg.msg_id, msg.queue,
                      UNREADABLE_RETRY_S, exc)
            self.mq.run(self.mq.client.nack(msg, delay_s=UNREADABLE_RETRY_S, error=str(exc)))
            return None


def _consumer_name() -> str:
    """A consumer name for this process's sessions: host, pid and a counter, as mq allows."""
    host = mq_name(socket.gethostname())[:120]
    return f"kombu.{host}.{os.getpid()}.{next(_consumers)}"


def register() -> None:
    """Make `mq://` URLs resolve to this transport in kombu (done on import)."""
    kombu_transport.TRANSPORT_ALIASES["mq"] = f"{__name__}:Transport"


register()
