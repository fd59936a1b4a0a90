"""The one place that picks the store for a `--db` value (urls.py says which kind it is)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mq.storage.base import Store, StoreRefused
from mq.storage.urls import is_postgres

if TYPE_CHECKING:
    from mq.storage.pg_cluster import ClusteredPostgresStore


def make_store(db: str, sync: str, keep_history_s: float, clock: Callable[[], float],
               max_body_memory_bytes: int | None = None) -> Store:
    """The store for `db`. asyncpg is imported only for a Postgres URL, so an SQLite broker
    needs nothing of it; without it, a Postgres URL is refused saying how to get it.
    `max_body_memory_bytes`: bodies of plain messages recovered at most (None: every one)."""
    if not is_postgres(db):
        from mq.storage.sqlite import SQLiteStore
        return SQLiteStore(db, sync, keep_history_s, clock,
                           max_body_memory_bytes=max_body_memory_bytes)
    try:
        from mq.storage.postgres import PostgresStore
    except ModuleNotFoundError as e:
        raise StoreRefused(f"a Postgres log needs asyncpg ({e}); install it with "
                           "pip install 'mq[postgres]'") from None
    return PostgresStore(db, sync, keep_history_s, clock,
                         max_body_memory_bytes=max_body_memory_bytes)



def clustered_store(db: str, node: str, sync: str, keep_history_s: float,
                    clock: Callable[[], float]) -> ClusteredPostgresStore:
    """The store of a broker of a cluster (`node`): a share of the slots of a Postgres log."""
    if not is_postgres(db):
        raise StoreRefused("a cluster's brokers share one Postgres database: give --db "
                           "postgresql://...")
    try:
        from mq.storage.pg_cluster import ClusteredPostgresStore
    except ModuleNotFoundError as e:
        raise StoreRefused(f"a clustered broker needs asyncpg and aetcd ({e}); install them "
                           "with pip install 'mq[cluster]'") from None
    return ClusteredPostgresStore(db, node, sync, keep_history_s, clock)
