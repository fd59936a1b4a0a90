"""One function per command: turn a command into a call on the core and a result map.

Results are the fields of a binary reply (protocol.md 2.3); the connection encodes them for its
mode. A GET that must wait returns PARKED and is answered later by the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mq.codec.commands import (
    Ack,
    Command,
    Declare,
    Get,
    Help,
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

if TYPE_CHECKING:
    from mq.server.connection import Connection

Result = dict[str, Any]
PARKED: Result = {}  # identity marks "no reply yet"


class Handlers:
    def __init__(self, core: Broker, park: Callable[[Connection, Get], None],
                 server_stats: Callable[[], dict[str, Any]], max_reply_bytes: int) -> None:
        self.core = core
        self.max_reply_bytes = max_reply_bytes
        self.park = park
        self.server_stats = server_stats
        self.table: dict[type, Callable[[Any, Connection], Result]] = {
            Ping: self.ping, Publish: self.publish, PublishMany: self.publish_many,
            Get: self.get, Ack: self.ack, Nack: self.nack, Touch: self.touch,
            Declare: self.declare, ListQueues: self.list_queues, Stats: self.stats,
            Help: self.ping, Quit: self.ping,
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
        return {"server": self.server_stats(), "queues": self.core.stats(cmd.queue)}
