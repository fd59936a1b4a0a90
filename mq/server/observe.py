"""What the HTTP side port sees of the broker: `BrokerView` (mq/http/view.py) over the server's
parts. Each method only reads: counts the broker keeps anyway, the core's introspection, and
the group commit's state. Nothing here is called on the hot path; a scrape or a dashboard poll
calls it once per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mq.errors import Code
from mq.http.view import Figures, Histogram, Member
from mq.server.connection import Traffic
from mq.server.rounds import Rounds
from mq.server.state import ServerState
from mq.storage.base import Store
from mq.storage.group_commit import Buckets, GroupCommit

BODY_PREVIEW_BYTES = 80  # of a dead letter's body, on the dashboard


def _histogram(b: Buckets) -> Histogram:
    return Histogram(b.bounds, tuple(b.counts), b.total)


class Observer:
    def __init__(self, state: ServerState, rounds: Rounds, group: GroupCommit,
                 store: Store, traffic: Traffic, serving: Callable[[], bool]) -> None:
        """`serving`: whether the broker's own port listens."""
        self.state = state
        self.core = state.core
        self.rounds = rounds
        self.group = group
        self.store = store
        self.traffic = traffic
        self.serving = serving

    def figures(self) -> Figures:
        stats = self.group.stats
        return Figures(
            queues=self.core.figures(),
            members=tuple(self._members()),
            server=self.state.figures(),
            deaths=dict(self.rounds.deaths),
            errors={code.value: self.rounds.errors[code.value] for code in Code},
            traffic={"opened": self.traffic.opened, "bytes_in": self.traffic.bytes_in,
                     "bytes_out": self.traffic.bytes_out},
            commit_seconds=_histogram(stats.seconds),
            commit_changes=_histogram(stats.changes),
            compacted=stats.compacted,
            log_bytes=self.store.log_bytes(),
        )

    def _members(self) -> list[Member]:
        out = []
        for queue in self.core.queue_names():
            group = self.core.group_stats(queue, keys=False)
            if group is None:
                continue
            for name, m in group["members"].items():
                out.append(Member(queue, group["group"], name, m["holder"], m["prefetch"],
                                  m["leases"], m["ring_share"],
                                  self.state.last_heartbeat_s_ago(m["holder"])))
        return out

    def consumers(self, limit: int) -> list[dict[str, Any]]:
        return [{"consumer": s.consumer, "holder": s.holder, "heartbeat_s": s.heartbeat_s,
                 "last_heartbeat_s_ago": self.state.last_heartbeat_s_ago(s.holder),
                 "leases": self.core.leases_of(s.holder), "connected": s.conn is not None}
                for s in self.state.sessions.first(limit)]

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for queue in self.core.dead_letter_queues():
            if len(out) >= limit:
                break
            for m in self.core.peek(queue, limit - len(out)):
                preview = m["body"][:BODY_PREVIEW_BYTES].decode("utf-8", errors="replace")
                out.append({"queue": queue, "msg_id": m["msg_id"],
                            "dead_from": m.get("dead_from"), "reason": m.get("dead_reason"),
                            "last_error": m["last_error"], "deliveries": m["deliveries"],
                            "body": preview})
        return out

    def explain(self, msg_id: int) -> dict[str, Any]:
        return self.state.explain(msg_id)

    def not_ready(self) -> str | None:
        if not self.store.is_open:
            return "the log is not open"
        failing = self.group.failing
        if failing is not None:
            return f"commits fail: {failing.reason}"
        if not self.serving():
            return "the broker's port is not listening"
        return None
