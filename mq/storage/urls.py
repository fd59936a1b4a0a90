"""What a `--db` value is, with no driver imported: a libpq-style URL (postgresql://... or
postgres://...) names a Postgres database, anything else an SQLite file."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


def url_problem(db: str) -> str | None:
    """Why `db`, a Postgres URL, cannot be read (a bad port, an unclosed IPv6 bracket), or
    None: the checks `shown` and the driver rely on, made before either sees it."""
    if not is_postgres(db):
        return None
    try:
        urlsplit(db).port  # noqa: B018  # parsing the port is the check
    except ValueError as e:
        return str(e)
    return None


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
