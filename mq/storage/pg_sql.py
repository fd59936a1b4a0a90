"""The Postgres log's tables and statements, and the one place where a log row (rows.py) becomes
the values Postgres is sent. Pure: no connection here.

The tables are SQLite's (sqlite.py), in a schema of their own, `mq`, so a database that also
holds other programs' tables is shared without a clash; the broker's sessions set
`search_path` to it, so the recovery queries are the very ones the SQLite store runs.

A batch of rows goes as one binary COPY into `log` (`records` gives its rows); outside a
transaction the COPY is its own. Measured here against the other one-statement form, a
multi-row `INSERT ... SELECT * FROM unnest($1::bigint[], ...)` of one array per column, with
100-byte bodies, median ms per commit: 1 row 0.25 (COPY) vs 0.27 (unnest), 100 rows 1.0 vs
1.7, 1,000 rows 7.3 vs 13.7. rows.py encodes an absent field as NO_NUMBER (NaN) or NO_TEXT (0),
which is what SQLite binds fastest; `records` turns those into None, which Postgres needs.

Format versions, kept in `mq.meta` under 'format_version' (the SQLite log's user_version):
  1  the first Postgres log; its rows and event codes are those of SQLite format 3.
  2  clustered mode (mq/storage/pg_cluster.py): every log row carries its slot (a column
     computed from msg_id, whose low 10 bits are the slot in a cluster), and `slot_owner`
     holds each slot's owner and epoch, the fence of every clustered commit.
To change it: bump FORMAT_VERSION, add the step to UPGRADES (SQL from the previous version),
note it here, and test opening a database of the old version.
"""

from __future__ import annotations

from typing import Any

from mq.core.events import FINAL, Bound, Change, Declared, Event, Purged
from mq.core.model import QueueSettings
from mq.storage.rows import TEXT_FIELDS, LogRow, Values

FORMAT_VERSION = 2
SLOT_COLUMN = "slot smallint GENERATED ALWAYS AS ((msg_id & 1023)::smallint) STORED"
SLOT_OWNER = """
CREATE TABLE IF NOT EXISTS mq.slot_owner (
    slot smallint PRIMARY KEY,
    epoch bigint NOT NULL,
    owner text NOT NULL
);
"""
# version -> SQL that takes a database of it to the next
UPGRADES: dict[int, str] = {1: f"ALTER TABLE mq.log ADD COLUMN {SLOT_COLUMN};{SLOT_OWNER}"}
LOCK_KEY = 0x6D714C47  # "mqLG": the advisory lock a broker holds on its database

SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS mq;
CREATE TABLE IF NOT EXISTS mq.log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id bigint NOT NULL,
    kind smallint NOT NULL,
    at double precision NOT NULL,
    queue text,
    body bytea,
    key text,
    delivery bigint,
    holder text,
    ready_at double precision,
    detail text,
    priority bigint,
    expires_at double precision,
    dedup text,
    body_of bigint,
    headers text,
    {SLOT_COLUMN}
);
CREATE INDEX IF NOT EXISTS log_by_msg ON mq.log (msg_id);
CREATE TABLE IF NOT EXISTS mq.queues (
    name text PRIMARY KEY,
    retention_s double precision NOT NULL,
    lease_s double precision NOT NULL,
    max_deliveries bigint NOT NULL,
    dead_letter text,
    dedup_window_s double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS mq.bindings (
    topic text NOT NULL,
    queue text NOT NULL,
    PRIMARY KEY (topic, queue)
);
CREATE TABLE IF NOT EXISTS mq.meta (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
{SLOT_OWNER}"""

_ALWAYS = frozenset({"msg_id", "kind", "at"})  # never absent

COPY_COLUMNS = LogRow._fields

VERSION = "SELECT value FROM meta WHERE name = 'format_version'"
STAMP = ("INSERT INTO meta (name, value) VALUES ('format_version', $1) "
         "ON CONFLICT (name) DO UPDATE SET value = excluded.value")
MAX_ID_EVER = "SELECT value FROM meta WHERE name = 'max_msg_id'"
SETTINGS = ("SELECT name, retention_s, lease_s, max_deliveries, dead_letter, dedup_window_s "
            "FROM queues")
BINDINGS = "SELECT topic, queue FROM bindings"
LOG_BYTES = "SELECT pg_total_relation_size('mq.log')"
# A fan-out copy's row has no body: it is in the row of the copy named by body_of.
READ_BODIES = ("SELECT l.msg_id, coalesce(l.body, h.body) FROM log AS l LEFT JOIN log AS h "
               f"ON h.msg_id = l.body_of AND h.kind = {int(Event.PUBLISHED)} "
               f"WHERE l.kind = {int(Event.PUBLISHED)} AND l.msg_id = ANY($1::bigint[])")
HISTORY = f"SELECT {', '.join(LogRow._fields)} FROM log WHERE msg_id = $1 ORDER BY seq"
# One statement, so one round trip and one transaction: remember the highest id (ids are never
# reused once their rows are gone), delete whole messages, and the middle rows of those whose
# body a live fan-out copy still reads.
COMPACT = f"""
WITH remembered AS (
    INSERT INTO meta (name, value) VALUES ('max_msg_id', $1)
    ON CONFLICT (name) DO UPDATE SET value = GREATEST(meta.value, excluded.value)),
whole AS (DELETE FROM log WHERE msg_id = ANY($2::bigint[]))
DELETE FROM log WHERE msg_id = ANY($3::bigint[])
    AND kind <> ALL(ARRAY[{', '.join(str(int(e)) for e in (Event.PUBLISHED, *FINAL))}])
"""


# Clustered mode (pg_cluster.py). Loading a slot reads its rows by this index; it is made by
# the first clustered broker, so a single broker's log pays nothing for it.
SLOT_INDEX = "CREATE INDEX IF NOT EXISTS log_by_slot ON mq.log (slot, seq)"
# Take slot $1 at epoch $2 for $3, unless it is held at a newer epoch (then no row comes back).
# From this commit on, every commit for the slot under an older epoch is refused (FENCE_CHECK).
TAKE_SLOT = ("INSERT INTO slot_owner (slot, epoch, owner) VALUES ($1, $2, $3) "
             "ON CONFLICT (slot) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner "
             "WHERE slot_owner.epoch <= excluded.epoch RETURNING epoch")
# The slots of a batch still held at the epochs given, locked FOR SHARE until the batch's
# transaction ends, so a TAKE_SLOT waits for a commit in flight instead of crossing it.
FENCE_CHECK = ("SELECT slot FROM slot_owner WHERE (slot, epoch) IN "
               "(SELECT * FROM unnest($1::smallint[], $2::bigint[])) FOR SHARE")
# The last event of every message of a slot that has one: those whose last is LEASED were
# leased when the slot's previous owner stopped, by `holder` until `ready_at` (rows.py).
LAST_EVENTS = ("SELECT DISTINCT ON (msg_id) msg_id, kind, at, holder, ready_at FROM log "
               f"WHERE slot = $1 AND kind <> {int(Event.PUBLISHED)} ORDER BY msg_id, seq DESC")


def of_slot(recovery_sql: str) -> str:
    """A recovery query of the whole log (sqlite.py's) narrowed to the slot bound as $1."""
    assert recovery_sql.count(" WHERE ") == 1
    return recovery_sql.replace(" WHERE ", " WHERE slot = $1 AND ")


def records(rows: list[Values]) -> list[tuple[Any, ...]]:
    """`rows` (rows.py values) with absent fields as None, as COPY takes them. Converted a
    column at a time: one test per column, not one per value."""
    out: list[list[Any]] = []
    for name, column in zip(LogRow._fields, zip(*rows, strict=True), strict=True):
        if name in _ALWAYS:
            out.append(list(column))
        elif name in TEXT_FIELDS:  # NO_TEXT is the int 0; no text or body is an int
            out.append([None if v.__class__ is int else v for v in column])
        else:  # NO_NUMBER is a NaN, the one value not equal to itself
            out.append([None if v != v else v for v in column])
    return list(zip(*out, strict=True))


def settings_of(record: Any) -> tuple[str, QueueSettings]:
    return record[0], QueueSettings(*record[1:])


def statement(change: Change) -> tuple[str, tuple[Any, ...]]:
    """The statement for a change that is not a log row (settings, bindings)."""
    if isinstance(change, Declared):
        s = change.settings
        return ("INSERT INTO queues (name, retention_s, lease_s, max_deliveries, dead_letter, "
                "dedup_window_s) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE "
                "SET retention_s = excluded.retention_s, lease_s = excluded.lease_s, "
                "max_deliveries = excluded.max_deliveries, dead_letter = excluded.dead_letter, "
                "dedup_window_s = excluded.dedup_window_s",
                (change.queue, s.retention_s, s.lease_s, s.max_deliveries, s.dead_letter,
                 s.dedup_window_s))
    if isinstance(change, Purged):
        return "DELETE FROM queues WHERE name = $1", (change.queue,)
    assert isinstance(change, Bound)
    if change.bound:
        return ("INSERT INTO bindings (topic, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                (change.topic, change.queue))
    return "DELETE FROM bindings WHERE topic = $1 AND queue = $2", (change.topic, change.queue)
