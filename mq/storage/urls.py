"""What a `--db` value is, with no driver imported: a libpq-style URL (postgresql://... or
postgres://...) names a Postgres database, anything else an SQLite file."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


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
