"""One function per command: turn a command into a call on the core and a result map.

Results are the fields of a binary reply (protocol.md 2.3); the connection encodes them for its
mode. A command answered later (a GET that waits, HISTORY, which reads the log) returns PARKED
and the server answers it when it can. Administration commands live in admin_handlers.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mq.codec.commands import (
    Ack,
    AckMany,
    Command,
    Fanout,
    Get,
    Heartbeat,
    Hello,
    Help,
    Join,
    Leave,
    Monitor,
    Nack,
    Ping,
    Publish,
    PublishMany,
    Quit,
    Subscribe,
    Touch,
    Unmonitor,
    Unsubscribe,
)
from mq.errors import Code, MQError
from mq.server.admin_handlers import PARKED, AdminHandlers, Result
from mq.server.sessions import Session

if TYPE_CHECKING:
    from mq.server.app import BrokerServer
    from mq.server.connection import Connection

__all__ = ["PARKED", "Handlers", "Result"]


class Handlers(AdminHandlers):
    def __init__(self, server: BrokerServer) -> None:
        super().__init__(server)
        self.max_reply_bytes = server.config.max_frame_bytes
        self.table: dict[type, Callable[[Any, Connection], Result]] = {
            Ping: self.ping, Publish: self.publish, PublishMany: self.publish_many,
            Fanout: self.fanout, Get: self.get, Ack: self.ack, AckMany: self.ack_many,
            Nack: self.nack, Touch: self.touch, Help: self.ping, Quit: self.quit,
            Hello: self.hello, Heartbeat: self.ping, Join: self.join, Leave: self.leave,
            Subscribe: self.subscribe, Unsubscribe: self.unsubscribe, Monitor: self.monitor,
            Unmonitor: self.unmonitor,
            **self.admin_table(),
        }

    def handle(self, command: Command, conn: Connection) -> Result:
        return self.table[type(command)](command, conn)

    def ping(self, cmd: Ping | Help | Heartbeat, conn: Connection) -> Result:
        return {}

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, cmd: Publish, conn: Connection) -> Result:
        o = cmd.options
        ids_before = self.core.next_id
        msg_id = self.core.publish(cmd.queue, cmd.body, cmd.key, o.priority,
                                   o.delay_from(self.core.clock()), o.ttl_s, o.dedup_id)
        if msg_id < ids_before:
            return {"msg_id": msg_id, "duplicate": True}
        return {"msg_id": msg_id}

    def publish_many(self, cmd: PublishMany, conn: Connection) -> Result:
        o = cmd.options
        publish, queue, delay = self.core.publish, cmd.queue, o.delay_from(self.core.clock())
        return {"msg_ids": [publish(queue, body, None, o.priority, delay, o.ttl_s)
                            for body in cmd.bodies]}

    def fanout(self, cmd: Fanout, conn: Connection) -> Result:
        o = cmd.options
        ids = self.core.publish_to_topic(cmd.topic, cmd.body, cmd.key, o.priority,
                                         o.delay_from(self.core.clock()), o.ttl_s, o.dedup_id)
        return {"msg_ids": ids}

    # --- consuming ----------------------------------------------------------------------------

    def get(self, cmd: Get, conn: Connection) -> Result:
        msgs = self.core.lease(cmd.queue, conn.holder, cmd.lease_s, cmd.max, self.max_reply_bytes)
        if msgs or cmd.wait_s <= 0:
            return {"msgs": [m.to_wire() for m in msgs]}
        self.server.park(conn, cmd)
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
        r = cmd.receipt
        self.core.nack(r.msg_id, r.delivery, conn.holder, cmd.delay_s, cmd.error)
        return {}

    def touch(self, cmd: Touch, conn: Connection) -> Result:
        r = cmd.receipt
        return {"lease_s": self.core.touch(r.msg_id, r.delivery, conn.holder, cmd.lease_s)}

    def subscribe(self, cmd: Subscribe, conn: Connection) -> Result:
        self.core.queue(cmd.queue)
        self.server.pushes.subscribe(conn, cmd.queue, cmd.prefetch, cmd.lease_s)
        return {"queue": cmd.queue, "prefetch": cmd.prefetch}

    def unsubscribe(self, cmd: Unsubscribe, conn: Connection) -> Result:
        self.server.pushes.unsubscribe(conn, cmd.queue)
        return {}

    def monitor(self, cmd: Monitor, conn: Connection) -> Result:
        self.server.pushes.monitor(conn, cmd.queue)
        return {"queue": cmd.queue}

    def unmonitor(self, cmd: Unmonitor, conn: Connection) -> Result:
        self.server.pushes.unmonitor(conn)
        return {}

    # --- consumer sessions --------------------------------------------------------------------

    def hello(self, cmd: Hello, conn: Connection) -> Result:
        if conn.session is not None and cmd.session != conn.session.token:
            raise MQError(Code.BAD_REQUEST, f"this connection is already consumer "
                          f"{conn.session.consumer!r}; open another connection for another one")
        sessions = self.server.sessions
        session, previous = sessions.open(conn, cmd.consumer, cmd.heartbeat_s,
                                          self.config.heartbeat_s, self.core.clock(),
                                          cmd.session)
        heartbeat_s = session.heartbeat_s
        if previous is not None and previous is not conn:
            previous.session = None  # a stale connection of the same consumer: cut it off
            previous.abort()
        conn.session = session
        self.core.transfer_holder(conn.anonymous_holder, session.holder)
        return {"session": session.token, "heartbeat_s": heartbeat_s,
                "dead_after_s": round(sessions.dead_after_s(heartbeat_s), 6),
                "grace_s": sessions.grace_s, "resumed": cmd.session == session.token}

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
            self.server.sessions.end(session)
            conn.session = None
            self.core.release_holder(session.holder, died=False)
        return {}
