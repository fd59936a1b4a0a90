"""One function per command: turn a command into a call on the core and an outcome.

Results are the fields of a binary reply (protocol.md 2.3); the connection's speaker encodes
them for its mode. A handler that cannot answer at once returns `Wait` (a GET that waits) or
`Later` (HISTORY, which reads the log) and the round answers when it can. Administration
commands live in admin_handlers.py.
"""

from __future__ import annotations

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
from mq.server.admin_handlers import AdminHandlers, Handler
from mq.server.outcome import Goodbye, Outcome, Peer, Wait
from mq.server.sessions import Session
from mq.server.state import ServerState


class Handlers(AdminHandlers):
    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.delivery = state.delivery
        self.table: dict[type, Handler] = {
            Ping: self.ping, Publish: self.publish, PublishMany: self.publish_many,
            Fanout: self.fanout, Get: self.get, Ack: self.ack, AckMany: self.ack_many,
            Nack: self.nack, Touch: self.touch, Help: self.ping, Quit: self.quit,
            Hello: self.hello, Heartbeat: self.ping, Join: self.join, Leave: self.leave,
            Subscribe: self.subscribe, Unsubscribe: self.unsubscribe, Monitor: self.monitor,
            Unmonitor: self.unmonitor,
            **self.admin_table(),
        }

    def handle(self, command: Command, peer: Peer) -> Outcome:
        return self.table[type(command)](command, peer)

    def ping(self, cmd: Ping | Help | Heartbeat, peer: Peer) -> Outcome:
        return {}

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, cmd: Publish, peer: Peer) -> Outcome:
        o = cmd.options
        msg_id, duplicate = self.core.publish(cmd.queue, cmd.body, cmd.key, o.priority,
                                              o.delay_from(self.core.clock()), o.ttl_s,
                                              o.dedup_id)
        return {"msg_id": msg_id, "duplicate": True} if duplicate else {"msg_id": msg_id}

    def publish_many(self, cmd: PublishMany, peer: Peer) -> Outcome:
        o = cmd.options
        publish, queue, delay = self.core.publish, cmd.queue, o.delay_from(self.core.clock())
        return {"msg_ids": [publish(queue, body, None, o.priority, delay, o.ttl_s).msg_id
                            for body in cmd.bodies]}

    def fanout(self, cmd: Fanout, peer: Peer) -> Outcome:
        o = cmd.options
        ids = self.core.publish_to_topic(cmd.topic, cmd.body, cmd.key, o.priority,
                                         o.delay_from(self.core.clock()), o.ttl_s, o.dedup_id)
        return {"msg_ids": ids}

    # --- consuming ----------------------------------------------------------------------------

    def get(self, cmd: Get, peer: Peer) -> Outcome:
        msgs = self.delivery.take(cmd.queue, peer.holder, cmd.lease_s, cmd.max)
        if msgs or cmd.wait_s <= 0:
            return {"msgs": msgs}
        return Wait(cmd)

    def ack(self, cmd: Ack, peer: Peer) -> Outcome:
        self.core.ack(cmd.receipt.msg_id, cmd.receipt.delivery, peer.holder)
        return {}

    def ack_many(self, cmd: AckMany, peer: Peer) -> Outcome:
        ack, holder = self.core.ack, peer.holder
        failed = []
        for r in cmd.receipts:
            try:
                ack(r.msg_id, r.delivery, holder)
            except MQError as e:
                failed.append({"receipt": str(r), "code": e.code.value, "message": e.message})
        return {"acked": len(cmd.receipts) - len(failed), "failed": failed}

    def nack(self, cmd: Nack, peer: Peer) -> Outcome:
        r = cmd.receipt
        self.core.nack(r.msg_id, r.delivery, peer.holder, cmd.delay_s, cmd.error)
        return {}

    def touch(self, cmd: Touch, peer: Peer) -> Outcome:
        r = cmd.receipt
        return {"lease_s": self.core.touch(r.msg_id, r.delivery, peer.holder, cmd.lease_s)}

    def subscribe(self, cmd: Subscribe, peer: Peer) -> Outcome:
        self.delivery.subscribe(peer, cmd.queue, cmd.prefetch, cmd.lease_s)
        return {"queue": cmd.queue, "prefetch": cmd.prefetch}

    def unsubscribe(self, cmd: Unsubscribe, peer: Peer) -> Outcome:
        self.delivery.unsubscribe(peer, cmd.queue)
        return {}

    def monitor(self, cmd: Monitor, peer: Peer) -> Outcome:
        self.state.monitors.watch(peer, cmd.queue)
        return {"queue": cmd.queue}

    def unmonitor(self, cmd: Unmonitor, peer: Peer) -> Outcome:
        self.state.monitors.forget(peer)
        return {}

    # --- consumer sessions --------------------------------------------------------------------

    def hello(self, cmd: Hello, peer: Peer) -> Outcome:
        if peer.session is not None and cmd.session != peer.session.token:
            raise MQError(Code.BAD_REQUEST, f"this connection is already consumer "
                          f"{peer.session.consumer!r}; open another connection for another one")
        sessions = self.state.sessions
        session, previous = sessions.open(peer, cmd.consumer, cmd.heartbeat_s,
                                          self.config.heartbeat_s, self.state.monotonic(),
                                          cmd.session)
        heartbeat_s = session.heartbeat_s
        if previous is not None and previous is not peer:
            previous.session = None  # a stale connection of the same consumer: cut it off
            previous.abort()
        peer.session = session
        self.core.transfer_holder(peer.anonymous_holder, session.holder)
        return {"session": session.token, "heartbeat_s": heartbeat_s,
                "dead_after_s": round(sessions.dead_after_s(heartbeat_s), 6),
                "grace_s": sessions.grace_s, "resumed": cmd.session == session.token}

    def _session(self, peer: Peer) -> Session[Peer]:
        if peer.session is None:
            raise MQError(Code.NO_SESSION, "say HELLO <consumer> first: groups need a consumer "
                          "session")
        return peer.session

    def join(self, cmd: Join, peer: Peer) -> Outcome:
        session = self._session(peer)
        prefetch = cmd.prefetch or self.config.default_prefetch
        joined = self.core.join(cmd.queue, cmd.group, session.consumer, session.holder, prefetch)
        session.queues.add(cmd.queue)
        return {"queue": cmd.queue, "group": joined.group, "consumer": session.consumer,
                "prefetch": prefetch, "members": joined.members}

    def leave(self, cmd: Leave, peer: Peer) -> Outcome:
        session = self._session(peer)
        self.core.leave(cmd.queue, session.consumer)
        session.queues.discard(cmd.queue)
        return {}

    def quit(self, cmd: Quit, peer: Peer) -> Outcome:
        """A consumer that says goodbye ends its session: its leases go back at once."""
        if peer.session is not None:
            self.state.end_session(peer.session, died=False)
        return Goodbye({})
