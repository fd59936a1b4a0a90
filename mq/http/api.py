"""The dashboard's JSON: an overview of the broker, and EXPLAIN of one message.

Both are read-only and bounded: at most MAX_ROWS consumers and dead letters are listed (the
overview says how many there are), and a message id is checked before anything is looked up.
"""

from __future__ import annotations

from typing import Any

from mq.http.request import HttpError
from mq.http.view import BrokerView
from mq.limits import MAX_MSG_ID

MAX_ROWS = 200  # consumers and dead letters listed by one overview
QUEUE_FIELDS = ("ready", "delayed", "leased", "published", "acked", "nacked", "dead_lettered",
                "oldest_ready_s")
SERVER_FIELDS = ("version", "uptime_s", "connections", "sessions", "commits", "sync")


def overview(view: BrokerView) -> dict[str, Any]:
    f = view.figures()
    return {
        "server": {key: f.server[key] for key in SERVER_FIELDS},
        "not_ready": view.not_ready(),
        "queues": [{"name": name, **{k: f.queues[name][k] for k in QUEUE_FIELDS}}
                   for name in sorted(f.queues)],
        "members": [{"queue": m.queue, "group": m.group, "consumer": m.consumer,
                     "leases": m.leases, "prefetch": m.prefetch,
                     "ring_share": m.ring_share, "last_heartbeat_s_ago": m.last_heartbeat_s_ago}
                    for m in f.members[:MAX_ROWS]],
        "consumers": view.consumers(MAX_ROWS),
        "dead_letters": view.dead_letters(MAX_ROWS),
        "max_rows": MAX_ROWS,
    }


def explain(view: BrokerView, query: dict[str, str]) -> dict[str, Any]:
    """EXPLAIN of the message `query["id"]` names; HttpError 400 for a missing or bad id."""
    raw = query.get("id", "").strip()
    if not raw:
        raise HttpError(400, "give the message id as ?id=N")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_MSG_ID:
        raise HttpError(400, f"a message id is a whole number from 1 to {MAX_MSG_ID}; "
                        f"got {raw[:40]!r}")
    return view.explain(int(raw))
