"""One function per command: turn a command into a call on the core and an outcome.

A handler returns the typed reply its command's SPEC declares (mq/codec/replies.py); the
connection's speaker encodes it for its mode. A handler that cannot answer at once returns
`Wait` (a GET that waits) or `Later` (HISTORY, which reads the log) and the round answers when
it can. Administration commands live in admin_handlers.py.
"""

from __future__ import annotations

from mq.codec.commands import (
    USAGE,
    Ack,
    AckMany,
    Auth,
    Cluster,
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
from mq.codec.options import PLAIN
from mq.codec.replies import (
    BYE,
    DONE,
    PONG,
    AckedMany,
    ClusterMap,
    Copies,
    Deduplicated,
    Done,
    Joined,
    Messages,
    Monitoring,
    Pong,
    Published,
    PublishedMany,
    SessionStarted,
    Subscribed,
    Touched,
    Usage,
)
from mq.errors import Code, MQError
from mq.server.admin_handlers import AdminHandlers, Handler
from mq.server.outcome import Goodbye, Later, Outcome, Peer, Wait
from mq.server.sessions import Session
from mq.server.state import ServerState

BODY_READ_WAIT_S = 10.0  # longest a GET waits for bodies read back from the log


class Handlers(AdminHandlers):
    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self.delivery = state.delivery
        self.table: dict[type, Handler] = {
            Ping: self.ping, Publish: self.publish, PublishMany: self.publish_many,
            Fanout: self.fanout, Get: self.get, Ack: self.ack, AckMany: self.ack_many,
            Nack: self.nack, Touch: self.touch, Help: self.help, Quit: self.quit,
            Hello: self.hello, Heartbeat: self.heartbeat, Join: self.join, Leave: self.leave,
            Subscribe: self.subscribe, Unsubscribe: self.unsubscribe, Monitor: self.monitor,
            Unmonitor: self.unmonitor, Auth: self.auth, Cluster: self.cluster,
            **self.admin_table(),
        }

    def handle(self, command: Command, peer: Peer) -> Outcome:
        return self.table[type(command)](command, peer)

    def ping(self, cmd: Ping, peer: Peer) -> Pong:
        return PONG

    def help(self, cmd: Help, peer: Peer) -> Usage:
        return USAGE

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, cmd: Publish, peer: Peer) -> Published:
        o = cmd.options
        if o is PLAIN:  # most publishes: no options, no clock reading for a delay
            msg_id, _ = self.core.publish(cmd.queue, cmd.body, cmd.key, headers=cmd.headers)
            return Published(msg_id)
        msg_id, duplicate = self.core.publish(cmd.queue, cmd.body, cmd.key, o.priority,
                                              o.delay_from(self.core.clock()), o.ttl_s,
                                              o.dedup_id, headers=cmd.headers)
        return Deduplicated(msg_id) if duplicate else Published(msg_id)

    def publish_many(self, cmd: PublishMany, peer: Peer) -> PublishedMany:
        o = cmd.options
        publish, queue, delay = self.core.publish, cmd.queue, o.delay_from(self.core.clock())
        if cmd.headers is None:
            return PublishedMany([publish(queue, body, None, o.priority, delay, o.ttl_s).msg_id
                                  for body in cmd.bodies])
        return PublishedMany([publish(queue, body, None, o.priority, delay, o.ttl_s,
                                      headers=headers).msg_id
                              for body, headers in zip(cmd.bodies, cmd.headers, strict=True)])

    def fanout(self, cmd: Fanout, peer: Peer) -> Copies:
        o = cmd.options
        ids = self.core.publish_to_topic(cmd.topic, cmd.body, cmd.key, o.priority,
                                         o.delay_from(self.core.clock()), o.ttl_s, o.dedup_id,
                                         cmd.headers)
        return Copies(ids)

    # --- consuming ----------------------------------------------------------------------------

    def get(self, cmd: Get, peer: Peer) -> Messages | Wait:
        msgs = self.delivery.take(cmd.queue, peer.holder, cmd.lease_s, cmd.max)
        if msgs:
            return Messages(msgs)
        if self.core.wants_bodies(cmd.queue):  # served once they are read back (bodies.py)
            return Wait(cmd, BODY_READ_WAIT_S)
        return Messages(msgs) if cmd.wait_s <= 0 else Wait(cmd)

    def ack(self, cmd: Ack, peer: Peer) -> Done:
        self.core.ack(cmd.receipt.msg_id, cmd.receipt.delivery, peer.holder)
        return DONE

    def ack_many(self, cmd: AckMany, peer: Peer) -> AckedMany:
        refused = self.core.ack_many(cmd.receipts, peer.holder)
        failed = [{"receipt": str(cmd.receipts[i]), "code": e.code.value, "message": e.message}
                  for i, e in refused]
        return AckedMany(len(cmd.receipts) - len(failed), failed)

    def nack(self, cmd: Nack, peer: Peer) -> Done:
        r = cmd.receipt
        self.core.nack(r.msg_id, r.delivery, peer.holder, cmd.delay_s, cmd.error)
        return DONE

    def touch(self, cmd: Touch, peer: Peer) -> Touched:
        r = cmd.receipt
        return Touched(self.core.touch(r.msg_id, r.delivery, peer.holder, cmd.lease_s))

    def subscribe(self, cmd: Subscribe, peer: Peer) -> Subscribed:
        self.delivery.subscribe(peer, cmd.queue, cmd.prefetch, cmd.lease_s)
        return Subscribed(cmd.queue, cmd.prefetch)

    def unsubscribe(self, cmd: Unsubscribe, peer: Peer) -> Done:
        self.delivery.unsubscribe(peer, cmd.queue)
        return DONE

    def monitor(self, cmd: Monitor, peer: Peer) -> Monitoring:
        self.state.monitors.watch(peer, cmd.queue)
        return Monitoring(cmd.queue)

    def unmonitor(self, cmd: Unmonitor, peer: Peer) -> Done:
        self.state.monitors.forget(peer)
        return DONE

    # --- consumer sessions --------------------------------------------------------------------

    def hello(self, cmd: Hello, peer: Peer) -> SessionStarted:
        if peer.session is not None and cmd.session != peer.session.token:
            raise MQError(Code.BAD_REQUEST, f"this connection is already consumer "
                          f"{peer.session.consumer!r}; open another connection for another one")
        sessions = self.state.sessions
        session, previous = sessions.open(peer, cmd.consumer, cmd.heartbeat_s,
                                          self.config.heartbeat_s, self.state.monotonic(),
                                          cmd.session, peer.user)
        heartbeat_s = session.heartbeat_s
        if previous is not None and previous is not peer:
            previous.session = None  # a stale connection of the same consumer: cut it off
            previous.abort()
        peer.session = session
        self.core.transfer_holder(peer.anonymous_holder, session.holder)
        return SessionStarted(session.token, heartbeat_s,
                              round(sessions.dead_after_s(heartbeat_s), 6), sessions.grace_s,
                              resumed=cmd.session == session.token)

    def cluster(self, cmd: Cluster, peer: Peer) -> ClusterMap:
        if self.state.cluster_map is None:
            return ClusterMap(None, None, 0, [], {})  # a single broker serves every queue
        return self.state.cluster_map()

    def heartbeat(self, cmd: Heartbeat, peer: Peer) -> Done:
        return DONE  # any request is a sign of life, and the round noted this one

    def _session(self, peer: Peer) -> Session[Peer]:
        if peer.session is None:
            raise MQError(Code.NO_SESSION, "say HELLO <consumer> first: groups need a consumer "
                          "session")
        return peer.session

    def join(self, cmd: Join, peer: Peer) -> Joined:
        session = self._session(peer)
        prefetch = cmd.prefetch or self.config.default_prefetch
        joined = self.core.join(cmd.queue, cmd.group, session.consumer, session.holder, prefetch)
        return Joined(cmd.queue, joined.group, session.consumer, prefetch, joined.members)

    def leave(self, cmd: Leave, peer: Peer) -> Done:
        session = self._session(peer)
        self.core.leave(cmd.queue, session.consumer)
        return DONE

    def auth(self, cmd: Auth, peer: Peer) -> Later:
        return Later(self.state.access.authenticate(cmd, peer))

    def quit(self, cmd: Quit, peer: Peer) -> Goodbye:
        """A consumer that says goodbye ends its session: its leases go back at once."""
        if peer.session is not None:
            self.state.end_session(peer.session, died=False)
        return Goodbye(BYE)
