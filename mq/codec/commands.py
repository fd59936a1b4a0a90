"""The commands of the protocol as frozen values, shared by the binary and the text mode.

Each command is declared once, here: its fields with their defaults and kinds (how each is read
from a request, fields.py), the checks of its constructor against the protocol's limits
(mq/limits.py), and its `SPEC`: binary op, text verb, HELP line and reply type (registry.py).
`REGISTRY`, at the bottom, derives from these what the decoders and HELP use. The order of
`Command` is the order HELP lists the commands in.

A handler never sees a malformed request: whatever a mode decodes goes through a constructor.
Limits that belong to the deployment (frame and line sizes) live in the server's Config instead.

Who may run each command is in its SPEC's `guard` (registry.Guard). Commands that name a
message rather than a queue (ack, nack, touch by receipt; explain, history by msg_id) are
checked on the queue the message is in now, which the core knows while it holds the message.
"""


from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from mq.auth.permissions import Permission
from mq.codec.fields import (
    Bodies,
    Body,
    Headers,
    HeadersEach,
    Integer,
    Key,
    Name,
    QueueName,
    ReceiptArg,
    Receipts,
    Seconds,
    Text,
    receipts,
)
from mq.codec.options import PLAIN, Options
from mq.codec.registry import Guard, Registry, Spec
from mq.codec.replies import (
    AckedMany,
    Authenticated,
    Bye,
    ClusterMap,
    Copies,
    Declared,
    Deleted,
    Explanation,
    Joined,
    LogEvents,
    Messages,
    Monitoring,
    Peeked,
    Pong,
    Published,
    PublishedMany,
    Purged,
    QueueNames,
    Rebound,
    Redriven,
    SessionStarted,
    Statistics,
    Subscribed,
    TopicBindings,
    Touched,
    Usage,
)
from mq.codec.syntax import PUB_OPTIONS, PUBLISHING, OneOrMany, Settings, Trailing
from mq.codec.values import (
    Receipt,
    check_int,
    check_key,
    check_name,
    check_queue,
    check_seconds,
    check_secret,
    check_text,
    optional_seconds,
)
from mq.errors import MQError, bad_request
from mq.limits import (
    DEFAULT_PEEK_COUNT,
    DEFAULT_PREFETCH,
    DEFAULT_REDRIVE_COUNT,
    MAX_ACK_BATCH,
    MAX_DELAY_S,
    MAX_DELIVERIES,
    MAX_ERROR_BYTES,
    MAX_GET_BATCH,
    MAX_HEARTBEAT_S,
    MAX_LEASE_S,
    MAX_MSG_ID,
    MAX_PEEK,
    MAX_PREFETCH,
    MAX_PUB_BATCH,
    MAX_REDRIVE,
    MAX_RETENTION_S,
    MAX_SESSION_CHARS,
    MAX_WAIT_S,
    MIN_HEARTBEAT_S,
    MIN_LEASE_S,
    MIN_RETENTION_S,
)

PUBLISH = Guard(Permission.PUBLISH)
CONSUME = Guard(Permission.CONSUME)
ADMIN = Guard(Permission.ADMIN)
INSPECT = Guard(Permission.INSPECT)
INSPECT_ALL = Guard(Permission.INSPECT, ("queue",), none_is_every=True)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A request that could not become a command; `rid` is echoed when it could be read."""

    rid: int | None
    error: MQError


@dataclass(frozen=True, slots=True)
class QueueOp:
    """Base of the commands that name one queue and nothing else."""

    queue: QueueName
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class MaybeQueueOp:
    """Base of the commands about one queue, or all of them (`queue` None)."""

    queue: Text | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class MessageOp:
    """Base of the commands that name one message by id."""

    msg_id: Integer
    rid: int | None = None

    def __post_init__(self) -> None:
        check_int("msg_id", self.msg_id, 1, MAX_MSG_ID)


# --- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    SPEC = Spec("ping", "PING", "check the connection", reply=Pong, before_auth=True)

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    SPEC = Spec("pub", "PUB", f"store a message; options: {' '.join(PUB_OPTIONS)} h.<name>",
                args=("queue",), text=PUBLISHING, reply=Published, guard=PUBLISH)

    queue: QueueName
    body: Body
    key: Key | None = None
    rid: int | None = None
    options: Options = PLAIN
    headers: Headers | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_key(self.key)


@dataclass(frozen=True, slots=True)
class PublishMany:
    SPEC = Spec("mpub", None, reply=PublishedMany, guard=PUBLISH)

    queue: QueueName
    bodies: Bodies
    rid: int | None = None
    options: Options = PLAIN
    headers: HeadersEach | None = None  # one map (or None) per body

    def __post_init__(self) -> None:
        check_queue(self.queue)
        if not 1 <= len(self.bodies) <= MAX_PUB_BATCH:
            raise bad_request(f"bodies must hold 1 to {MAX_PUB_BATCH} messages")
        if self.headers is not None and len(self.headers) != len(self.bodies):
            raise bad_request(f"headers must hold one map (or nil) per body: {len(self.bodies)} "
                              f"bodies, {len(self.headers)} headers")
        if self.options.dedup_id is not None:
            raise bad_request("dedup_id names one message: use pub, not mpub")


@dataclass(frozen=True, slots=True)
class Fanout:
    """Publish once to a topic: one copy per bound queue."""

    SPEC = Spec("fanout", "FANOUT", "publish to every queue bound to topic", args=("topic",),
                text=PUBLISHING, reply=Copies, guard=Guard(Permission.PUBLISH, ("topic",)))

    topic: Name
    body: Body
    key: Key | None = None
    rid: int | None = None
    options: Options = PLAIN
    headers: Headers | None = None

    def __post_init__(self) -> None:
        check_name("topic", self.topic)
        check_key(self.key)


@dataclass(frozen=True, slots=True)
class Get:
    SPEC = Spec("get", "GET", "lease the next ready message",
                args=("queue", "lease_s", "wait_s"), reply=Messages, guard=CONSUME)

    queue: QueueName
    lease_s: Seconds | None = None
    wait_s: Seconds = 0.0
    max: Integer = 1
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)
        check_seconds("wait_s", self.wait_s, 0.0, MAX_WAIT_S)
        if isinstance(self.max, bool) or not isinstance(self.max, int):
            raise bad_request(f"max must be an integer, got {self.max!r}")
        if not 1 <= self.max <= MAX_GET_BATCH:
            raise bad_request(f"max={self.max} is out of bounds: 1 to {MAX_GET_BATCH}")


@dataclass(frozen=True, slots=True)
class AckMany:
    """Ack a batch: each receipt succeeds or fails on its own; one commit for all. Asked for
    as an ack with several receipts (Ack's SPEC)."""

    SPEC = Spec(None, None, reply=AckedMany, guard=Guard(Permission.CONSUME, ("receipts",)))

    receipts: Receipts
    rid: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.receipts) <= MAX_ACK_BATCH:
            raise bad_request(f"receipts must hold 1 to {MAX_ACK_BATCH} receipts")


def _ack_request(m: dict[str, Any], rid: int | None) -> Ack | AckMany:
    """A binary ack with `receipts` instead of `receipt` is a batch."""
    if "receipts" in m:
        return AckMany(receipts(m.get("receipts")), rid)
    return Ack(Receipt.parse(m.get("receipt")), rid)


@dataclass(frozen=True, slots=True)
class Ack:
    SPEC = Spec("ack", "ACK", "done with messages: remove them", args=("receipt",),
                wire=_ack_request, text=OneOrMany(AckMany, MAX_ACK_BATCH),
                guard=Guard(Permission.CONSUME, ("receipt",)))

    receipt: ReceiptArg
    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Nack:
    # The error text runs to the end of the line. A line of more than 10,000 tokens is
    # answered with the usage, as it always was.
    SPEC = Spec("nack", "NACK", "give a message back, now or after a delay",
                args=("receipt", "delay_s"), text=Trailing("error", "error text", 10_000),
                guard=Guard(Permission.CONSUME, ("receipt",)))

    receipt: ReceiptArg
    delay_s: Seconds = 0.0
    rid: int | None = None
    error: Text | None = None  # why the consumer gave up; kept with the message

    def __post_init__(self) -> None:
        check_seconds("delay_s", self.delay_s, 0.0, MAX_DELAY_S)
        check_text("error", self.error, MAX_ERROR_BYTES)


@dataclass(frozen=True, slots=True)
class Touch:
    SPEC = Spec("touch", "TOUCH", "extend a lease", args=("receipt", "lease_s"),
                reply=Touched, guard=Guard(Permission.CONSUME, ("receipt",)))

    receipt: ReceiptArg
    lease_s: Seconds | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Push consumption: the broker sends up to `prefetch` unacked messages, more as acks come."""

    SPEC = Spec("sub", "SUB", "have messages pushed as MSG lines",
                args=("queue", "prefetch", "lease_s"), reply=Subscribed, guard=CONSUME)

    queue: QueueName
    prefetch: Integer = DEFAULT_PREFETCH
    lease_s: Seconds | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("prefetch", self.prefetch, 1, MAX_PREFETCH)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)


class Unsubscribe(QueueOp):
    __slots__ = ()
    SPEC = Spec("unsub", "UNSUB", "stop pushing", args=("queue",))


# --- consumer sessions and groups ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Identify as a consumer and start (or resume, with `session`) a heartbeat session."""

    SPEC = Spec("hello", "HELLO", "start or resume a consumer session",
                args=("consumer", "heartbeat_s", "session"), reply=SessionStarted)

    consumer: Name
    heartbeat_s: Seconds | None = None
    session: Text | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_name("consumer", self.consumer)
        optional_seconds("heartbeat_s", self.heartbeat_s, MIN_HEARTBEAT_S, MAX_HEARTBEAT_S)
        if self.session is not None and (not isinstance(self.session, str)
                                         or not 1 <= len(self.session) <= MAX_SESSION_CHARS):
            raise bad_request("session must be the token a previous hello returned")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    SPEC = Spec("heartbeat", "HEARTBEAT", "a sign of life for your session", aliases=("HB",))

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Join:
    SPEC = Spec("join", "JOIN", "join a consumer group (after HELLO)",
                args=("queue", "group", "prefetch"), reply=Joined, guard=CONSUME)

    queue: QueueName
    group: Name
    prefetch: Integer | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_name("group", self.group)
        p = self.prefetch
        if p is not None and (isinstance(p, bool) or not isinstance(p, int)
                              or not 1 <= p <= MAX_PREFETCH):
            raise bad_request(f"prefetch must be an integer from 1 to {MAX_PREFETCH}")


class Leave(QueueOp):
    __slots__ = ()
    SPEC = Spec("leave", "LEAVE", "leave the group on a queue", args=("queue",))


# --- administration -----------------------------------------------------------------------

DECLARE_SETTINGS = ("retention_s", "lease_s", "max_deliveries", "dead_letter", "dedup_window_s")


@dataclass(frozen=True, slots=True)
class Declare:
    SPEC = Spec("declare", "DECLARE", f"settings: {' '.join(DECLARE_SETTINGS)}",
                args=("queue",), text=Settings(DECLARE_SETTINGS), reply=Declared,
                guard=Guard(Permission.ADMIN, ("queue", "dead_letter")))

    queue: QueueName
    retention_s: Seconds | None = None
    lease_s: Seconds | None = None
    rid: int | None = None
    max_deliveries: Integer | None = None
    dead_letter: Text | None = None
    dedup_window_s: Seconds | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        optional_seconds("retention_s", self.retention_s, MIN_RETENTION_S, MAX_RETENTION_S)
        optional_seconds("lease_s", self.lease_s, MIN_LEASE_S, MAX_LEASE_S)
        if self.max_deliveries is not None:
            check_int("max_deliveries", self.max_deliveries, 0, MAX_DELIVERIES)
        if self.dead_letter is not None:
            check_queue(self.dead_letter)
        optional_seconds("dedup_window_s", self.dedup_window_s, 0.0, MAX_RETENTION_S)

    def settings(self) -> dict[str, object]:
        """The settings this declare changes (None: left as they are)."""
        return {name: getattr(self, name) for name in DECLARE_SETTINGS}


@dataclass(frozen=True, slots=True)
class Peek:
    SPEC = Spec("peek", "PEEK", "the next messages, without leasing them",
                args=("queue", "count"), reply=Peeked, guard=INSPECT)

    queue: QueueName
    count: Integer = DEFAULT_PEEK_COUNT
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("count", self.count, 1, MAX_PEEK)


class Purge(QueueOp):
    __slots__ = ()
    SPEC = Spec("purge", "PURGE", "remove every message of a queue", args=("queue",),
                reply=Purged, guard=ADMIN)


class DeleteQueue(QueueOp):
    __slots__ = ()
    SPEC = Spec("delete", "DELETE", "remove a queue and its messages", args=("queue",),
                reply=Deleted, guard=ADMIN)


@dataclass(frozen=True, slots=True)
class Redrive:
    SPEC = Spec("redrive", "REDRIVE", "move dead letters back", args=("queue", "count", "to"),
                synopsis="<dead-letter queue> [count] [to]", reply=Redriven,
                guard=Guard(Permission.ADMIN, ("queue", "to")))

    queue: QueueName
    count: Integer = DEFAULT_REDRIVE_COUNT
    to: Text | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_int("count", self.count, 1, MAX_REDRIVE)
        if self.to is not None:
            check_queue(self.to)


@dataclass(frozen=True, slots=True)
class Bind:
    SPEC = (
        Spec("bind", "BIND", "copy what FANOUT sends to topic here", args=("topic", "queue"),
             reply=Rebound, guard=ADMIN),
        Spec("unbind", "UNBIND", "stop that", args=("topic", "queue"), fixed={"unbind": True},
             reply=Rebound, guard=ADMIN),
    )

    topic: Name
    queue: QueueName
    unbind: bool = False
    rid: int | None = None

    def __post_init__(self) -> None:
        check_name("topic", self.topic)
        check_queue(self.queue)


@dataclass(frozen=True, slots=True)
class Bindings:
    SPEC = Spec("bindings", "BINDINGS", "which queues each topic feeds", args=("topic",),
                reply=TopicBindings, guard=Guard(Permission.INSPECT, ()))

    topic: Text | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        if self.topic is not None:
            check_name("topic", self.topic)


# --- introspection ------------------------------------------------------------------------


class Explain(MessageOp):
    __slots__ = ()
    SPEC = Spec("explain", "EXPLAIN", "why is this message (not) delivered?", args=("msg_id",),
                reply=Explanation, guard=Guard(Permission.INSPECT, ("msg_id",)))


class History(MessageOp):
    __slots__ = ()
    SPEC = Spec("history", "HISTORY", "its life, from the log", args=("msg_id",),
                reply=LogEvents, guard=Guard(Permission.INSPECT, ("msg_id",)))


class Monitor(MaybeQueueOp):
    """Stream a line for every committed message event (of one queue, or all)."""

    __slots__ = ()
    SPEC = Spec("monitor", "MONITOR", "a live line for every message event", args=("queue",),
                reply=Monitoring, guard=INSPECT_ALL)


@dataclass(frozen=True, slots=True)
class Unmonitor:
    SPEC = Spec("unmonitor", "UNMONITOR", "stop those lines")

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class ListQueues:
    SPEC = Spec("queues", "QUEUES", "list the queues", reply=QueueNames,
                guard=Guard(Permission.INSPECT, ()))

    rid: int | None = None


class Stats(MaybeQueueOp):
    __slots__ = ()
    SPEC = Spec("stats", "STATS", "counts per queue", args=("queue",), reply=Statistics,
                guard=INSPECT_ALL)


@dataclass(frozen=True, slots=True)
class Cluster:
    """The slot map, for a client of a cluster to send each queue's requests to its owner;
    any authenticated connection may read it (it names brokers, not queues)."""

    SPEC = Spec("cluster", "CLUSTER", "which broker serves which slots", reply=ClusterMap)

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Help:
    SPEC = Spec(None, "HELP", "this list", reply=Usage, before_auth=True)

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Quit:
    SPEC = Spec("quit", "QUIT", "close the connection", reply=Bye, before_auth=True)

    rid: int | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    """Say who you are, when the broker has a users file. The secret runs to the end of the
    line in text mode (trimmed), so it may hold inner blanks."""

    SPEC = Spec("auth", "AUTH", "authenticate as a user of the broker's users file",
                args=("user",), synopsis="<user> <secret>",
                text=Trailing("secret", "secret", 10_000), reply=Authenticated,
                before_auth=True)

    user: Name
    secret: Text | None = None
    rid: int | None = None

    def __post_init__(self) -> None:
        check_name("user", self.user)
        check_secret(self.secret)

    def __repr__(self) -> str:
        return f"Auth(user={self.user!r}, secret=<hidden>, rid={self.rid!r})"  # never logged


Command = (
    Ping | Publish | PublishMany | Fanout | Get | Ack | AckMany | Nack | Touch | Subscribe
    | Unsubscribe | Hello | Heartbeat | Join | Leave | Declare | Peek | Purge | DeleteQueue
    | Redrive | Bind | Bindings | Explain | History | Monitor | Unmonitor | ListQueues | Stats
    | Cluster | Auth | Help | Quit
)
Decoded = Command | Rejected
"""What a decoder makes of one frame or line."""

REGISTRY = Registry.of(get_args(Command))
USAGE = Usage(tuple(REGISTRY.help_lines()))
"""The reply to HELP: every command, itself included, so it is known once all are declared."""
