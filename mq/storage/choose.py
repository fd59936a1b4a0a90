"""The one place that picks the store for a `--db` value: a libpq-style URL
(postgresql://... or postgres://...) is a Postgres database, anything else an SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from mq.storage.base import Store, StoreRefused

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


def make_store(db: str, sync: str, keep_history_s: float, clock: Callable[[], float]) -> Store:
    """The store for `db`. asyncpg is imported only for a Postgres URL, so an SQLite broker
    needs nothing of it; without it, a Postgres URL is refused saying how to get it."""
    if not is_postgres(db):
        from mq.storage.sqlite import SQLiteStore
        return SQLiteStore(db, sync, keep_history_s, clock)
    try:
        from mq.storage.postgres import PostgresStore
    except ModuleNotFoundError as e:
        raise StoreRefused(f"a Postgres log needs asyncpg ({e}); install it with "
                           "pip install 'mq[postgres]'") from None
    return PostgresStore(db, sync, keep_history_s, clock)


def shown(db: str) -> str:
    """`db` as logs and messages show it: a URL without its password."""
    if not is_postgres(db):
        return db
    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = f"{parts.username}:***@{parts.hostname or ''}" + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
