"""One function per command: turn a command into a call on the core and a result map.

Results are the fields of a binary reply (protocol.md 2.3); the connection encodes them for its
mode. A GET that must wait returns PARKED and is answered later by the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mq.codec.commands import (
    Ack,
    AckMany,
    Command,
    Declare,
    Get,
    Heartbeat,
    Hello,
    Help,
    Join,
    Leave,
    ListQueues,
    Nack,
    Ping,
    Publish,
    PublishMany,
    Quit,
    Stats,
    Touch,
)
from mq.core.broker import Broker
from mq.errors import Code, MQError
from mq.server.config import Config
from mq.server.sessions import Session, Sessions

if TYPE_CHECKING:
    from mq.server.connection import Connection

Result = dict[str, Any]
PARKED: Result = {}  # identity marks "no reply yet"


class Handlers:
    def __init__(self, core: Broker, sessions: Sessions[Connection], config: Config,
                 park: Callable[[Connection, Get], None],
                 server_stats: Callable[[], dict[str, Any]]) -> None:
        self.core = core
        self.sessions = sessions
        self.config = config
        self.max_reply_bytes = config.max_frame_bytes
        self.park = park
        self.server_stats = server_stats
        self.table: dict[type, Callable[[Any, Connection], Result]] = {
            Ping: self.ping, Publish: self.publish, PublishMany: self.publish_many,
            Get: self.get, Ack: self.ack, AckMany: self.ack_many, Nack: self.nack,
            Touch: self.touch,
            Declare: self.declare, ListQueues: self.list_queues, Stats: self.stats,
            Help: self.ping, Quit: self.quit, Hello: self.hello, Heartbeat: self.ping,
            Join: self.join, Leave: self.leave,
        }

    def handle(self, command: Command, conn: Connection) -> Result:
        return self.table[type(command)](command, conn)

    def ping(self, cmd: Ping | Help | Quit, conn: Connection) -> Result:
        return {}

    def publish(self, cmd: Publish, conn: Connection) -> Result:
        return {"msg_id": self.core.publish(cmd.queue, cmd.body, cmd.key)}

    def publish_many(self, cmd: PublishMany, conn: Connection) -> Result:
        publish, queue = self.core.publish, cmd.queue
        return {"msg_ids": [publish(queue, body) for body in cmd.bodies]}

    def get(self, cmd: Get, conn: Connection) -> Result:
        msgs = self.core.lease(cmd.queue, conn.holder, cmd.lease_s, cmd.max, self.max_reply_bytes)
        if msgs or cmd.wait_s <= 0:
            return {"msgs": [m.to_wire() for m in msgs]}
        self.park(conn, cmd)
        return PARKED

    def ack(self, cmd: Ack, conn: Connection) -> Result:
        self.core.ack(cmd.receipt.msg_id, cmd.receipt.delivery, conn.holder)
        return {}

    def ack_many(self, cmd: AckMany, conn: Connection) -> Result:
        ack, holder = self.core.ack, conn.holder
        failed = []
        for r in cmd.receipts:
            try:
                ack(r.msg_id, r.delivery, holder)
            except MQError as e:
                failed.append({"receipt": str(r), "code": e.code.value, "message": e.message})
        return {"acked": len(cmd.receipts) - len(failed), "failed": failed}

    def nack(self, cmd: Nack, conn: Connection) -> Result:
        self.core.nack(cmd.receipt.msg_id, cmd.receipt.delivery, conn.holder, cmd.delay_s)
        return {}

    def touch(self, cmd: Touch, conn: Connection) -> Result:
        r = cmd.receipt
        return {"lease_s": self.core.touch(r.msg_id, r.delivery, conn.holder, cmd.lease_s)}

    def declare(self, cmd: Declare, conn: Connection) -> Result:
        s = self.core.declare(cmd.queue, cmd.retention_s, cmd.lease_s)
        return {"queue": cmd.queue, "retention_s": s.retention_s, "lease_s": s.lease_s}

    def list_queues(self, cmd: ListQueues, conn: Connection) -> Result:
        return {"queues": self.core.queue_names()}

    def stats(self, cmd: Stats, conn: Connection) -> Result:
        queues = self.core.stats(cmd.queue)
        for name, queue_stats in queues.items():
            group = self.core.group_stats(name)
            if group is not None:
                now = self.core.clock()
                for member in group["members"].values():
                    session = self.sessions.by_holder(member["holder"])
                    beat = self.sessions.last_beat(session) if session is not None else None
                    member["last_heartbeat_s_ago"] = None if beat is None else round(now - beat, 3)
                queue_stats["group"] = group
        return {"server": self.server_stats(), "queues": queues}

    def hello(self, cmd: Hello, conn: Connection) -> Result:
        if conn.session is not None and cmd.session != conn.session.token:
            raise MQError(Code.BAD_REQUEST, f"this connection is already consumer "
                          f"{conn.session.consumer!r}; open another connection for another one")
        session, previous = self.sessions.open(conn, cmd.consumer, cmd.heartbeat_s,
                                               self.config.heartbeat_s, self.core.clock(),
                                               cmd.session)
        heartbeat_s = session.heartbeat_s
        if previous is not None and previous is not conn:
            previous.session = None  # a stale connection of the same consumer: cut it off
            previous.abort()
        conn.session = session
        return {"session": session.token, "heartbeat_s": heartbeat_s,
                "dead_after_s": round(self.sessions.dead_after_s(heartbeat_s), 6),
                "grace_s": self.sessions.grace_s, "resumed": cmd.session == session.token}

    def _session(self, conn: Connection) -> Session[Connection]:
        if conn.session is None:
            raise MQError(Code.NO_SESSION, "say HELLO <consumer> first: groups need a consumer "
                          "session")
        return conn.session

    def join(self, cmd: Join, conn: Connection) -> Result:
        session = self._session(conn)
        prefetch = cmd.prefetch or self.config.default_prefetch
        group = self.core.join(cmd.queue, cmd.group, session.consumer, session.holder, prefetch)
        session.queues.add(cmd.queue)
        return {"queue": cmd.queue, "group": group.name, "consumer": session.consumer,
                "prefetch": prefetch, "members": len(group.members)}

    def leave(self, cmd: Leave, conn: Connection) -> Result:
        session = self._session(conn)
        self.core.leave(cmd.queue, session.consumer)
        session.queues.discard(cmd.queue)
        return {}

    def quit(self, cmd: Quit, conn: Connection) -> Result:
        """A consumer that says goodbye ends its session: its leases go back at once."""
        session = conn.session
        if session is not None:
            self.sessions.end(session)
            conn.session = None
            self.core.release_holder(session.holder, died=False)
        return {}
