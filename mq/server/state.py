"""What the command handlers may use: the narrow context of a running broker.

The handlers get this instead of the server: the core, the registries of who waits, subscribes,
monitors and holds a session, reads of the log, and the server's figures. Nothing here runs a
round, commits or touches a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from mq.codec.replies import ClusterMap
from mq.core.broker import Broker
from mq.core.clock import Clock
from mq.server.access import Access
from mq.server.bodies import BodyReader
from mq.server.config import Config
from mq.server.delivery import Delivery
from mq.server.monitor import Monitors
from mq.server.outcome import Peer
from mq.server.routing import Router
from mq.server.sessions import Session, Sessions


@dataclass(slots=True, eq=False)
class ServerState:
    config: Config
    core: Broker
    monotonic: Clock  # heartbeats, grace periods and waiting GETs run on it, not on Unix time
    sessions: Sessions[Peer]
    delivery: Delivery[Peer]
    monitors: Monitors[Peer]
    history: Callable[[int], Coroutine[Any, Any, list[dict[str, Any]]]]  # the log of a message
    figures: Callable[[], dict[str, Any]]  # the server's own STATS figures
    access: Access  # who may do what
    bodies: BodyReader  # reads back bodies kept in the log only
    router: Router | None = None  # clustered: which slots are served here (routing.py)
    cluster_map: Callable[[], ClusterMap] | None = None  # clustered: the CLUSTER reply

    def end_session(self, session: Session[Peer], died: bool) -> tuple[int, int]:
        """End `session`: its leases go back now, counting a death when it `died` rather than
        said goodbye. Returns (released, poisoned) counts."""
        self.sessions.end(session)
        if session.conn is not None:
            session.conn.session = None
        return self.core.release_holder(session.holder, died=died)

    def explain(self, msg_id: int) -> dict[str, Any]:
        """The core's EXPLAIN of `msg_id`, with its holder's last heartbeat when it has one."""
        out = self.core.explain(msg_id)
        holder = out.get("holder")
        ago = self.last_heartbeat_s_ago(holder) if holder else None
        if ago is not None:
            out["holder_last_heartbeat_s_ago"] = ago
            out["why"] += f"; its consumer's last heartbeat was {ago:.1f} s ago"
        return out

    def last_heartbeat_s_ago(self, holder: str) -> float | None:
        """Seconds since the session holding as `holder` last beat; None without a session."""
        session = self.sessions.by_holder(holder)
        beat = self.sessions.last_beat(session) if session is not None else None
        return None if beat is None else round(self.monotonic() - beat, 3)
