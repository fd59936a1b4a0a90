"""Consumer sessions: a name, a token, a heartbeat, and the leases they hold across reconnects.

A connection that says HELLO gets a session. Its leases belong to the session, not to the
connection, so a consumer that reconnects within the grace period and presents its token keeps
them. The liveness monitor declares a session dead when it misses its heartbeats or its grace
runs out; the server then gives back all of its leases. A connection without a session is its
own holder and dies with its connection, but is never killed for being idle.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Generic, TypeVar

from mq.liveness import Liveness

C = TypeVar("C")


@dataclass(slots=True, eq=False)
class Session(Generic[C]):
    token: str
    consumer: str
    heartbeat_s: float
    conn: C | None
    user: str | None = None  # the user its first connection authenticated as (None: no users)

    @property
    def holder(self) -> str:
        """Who holds the session's leases, as the log and STATS show it."""
        return f"{self.consumer}/{self.token[:8]}"


class Sessions(Generic[C]):
    def __init__(self, heartbeat_misses: int, grace_s: float, adopt: bool = False) -> None:
        """`adopt`: a HELLO with a token this broker does not know starts the session under
        that token (clustered: the consumer resumes at its queue's new broker, and its holder
        name is the one the log has)."""
        self.liveness = Liveness(heartbeat_misses)
        self.grace_s = grace_s
        self.adopt = adopt
        self._by_token: dict[str, Session[C]] = {}
        self._by_holder: dict[str, Session[C]] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def first(self, limit: int) -> list[Session[C]]:
        """Up to `limit` sessions, oldest first."""
        return list(itertools.islice(self._by_token.values(), limit))

    def dead_after_s(self, heartbeat_s: float) -> float:
        return heartbeat_s * self.liveness.misses

    def open(self, conn: C, consumer: str, heartbeat_s: float | None, default_heartbeat_s: float,
             now: float, token: str | None, user: str | None = None) -> tuple[Session[C], C | None]:
        """Resume the session `token` names (keeping its interval unless a new one is asked
        for), or start a new one. Only the same consumer name, authenticated as the same user,
        resumes it: a token that leaked to another user starts that user a session of its own
        and leaves the owner's alone.

        Returns the session and, when resuming, the connection it was attached to before
        (which the caller detaches), if any."""
        session = self._by_token.get(token) if token is not None else None
        if session is not None and session.consumer == consumer and session.user == user:
            previous, session.conn = session.conn, conn
            if heartbeat_s is not None:
                session.heartbeat_s = heartbeat_s
                self.liveness.track(session.token, heartbeat_s, now)
            self.liveness.beat(session.token, now)
            return session, previous
        adopted = self.adopt and token is not None and token not in self._by_token
        session = Session(token if adopted and token is not None else secrets.token_hex(16),
                          consumer, heartbeat_s or default_heartbeat_s, conn, user)
        self._by_token[session.token] = session
        self._by_holder[session.holder] = session
        self.liveness.track(session.token, session.heartbeat_s, now)
        return session, None

    def beat(self, session: Session[C], now: float) -> None:
        self.liveness.beat(session.token, now)

    def detach(self, session: Session[C], now: float) -> None:
        """Its connection is gone: the session waits `grace_s` for a reconnect."""
        session.conn = None
        self.liveness.disconnected(session.token, now, self.grace_s)

    def end(self, session: Session[C]) -> None:
        self.liveness.forget(session.token)
        self._by_token.pop(session.token, None)
        self._by_holder.pop(session.holder, None)

    def dead(self, now: float) -> list[Session[C]]:
        """Sessions whose heartbeats or grace ran out; they are ended."""
        out = []
        for token in self.liveness.due(now):
            session = self._by_token.get(token)
            if session is not None:
                self.end(session)
                out.append(session)
        return out

    def by_holder(self, holder: str) -> Session[C] | None:
        return self._by_holder.get(holder)

    def last_beat(self, session: Session[C]) -> float | None:
        return self.liveness.last_beat(session.token)

    def next_deadline(self) -> float | None:
        return self.liveness.next_deadline()
