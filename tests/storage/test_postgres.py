"""What is the Postgres store's own, against a real server (tests/pg.py): `--sync` as the
session's synchronous_commit, one broker per database by an advisory lock, the format version,
and a lost server: writes fail as StoreUnavailable, nothing is taken for committed that was not,
and the store writes again once the server is back, without being reopened."""

from __future__ import annotations

import asyncio

import pytest

from mq.storage.base import StoreRefused, StoreUnavailable
from mq.storage.pg_link import MIN_BACKOFF_S
from mq.storage.pg_sql import FORMAT_VERSION, LOCK_KEY
from mq.storage.postgres import PostgresStore
from tests.pg import PgServer, query
from tests.storage.log_files import AFTER_ALL, LogTarget, every_message, new_broker, opened


@pytest.mark.parametrize(("sync", "setting"), [("full", "on"), ("normal", "off")])
def test_sync_modes_set_synchronous_commit(pg_url: str, sync: str, setting: str) -> None:
    async def scenario() -> str:
        store = PostgresStore(pg_url, sync, clock=AFTER_ALL)
        async with opened(store), store._link.session() as conn:
            return str(await conn.fetchval("SHOW synchronous_commit"))

    assert asyncio.run(scenario()) == setting


def test_a_second_store_on_one_database_is_refused_and_the_first_goes_on(pg_url: str) -> None:
    async def scenario() -> None:
        first = PostgresStore(pg_url, clock=AFTER_ALL)
        async with opened(first):
            with pytest.raises(StoreRefused) as refused:
                async with opened(PostgresStore(pg_url, clock=AFTER_ALL)):
                    pass
            message = str(refused.value)
            assert f"{pg_url} is in use by another mq broker (mq broker pid" in message
            assert "Stop that broker first, or give this one another --db" in message
            broker = new_broker()
            broker.publish("q", b"still mine")
            await first.write(broker.take_effects().changes)
        async with opened(PostgresStore(pg_url, clock=AFTER_ALL)) as recovered:
            assert [m.body for m in every_message(recovered)] == [b"still mine"]

    asyncio.run(scenario())


def test_a_broker_whose_lock_session_ended_commits_nothing_after(pg_url: str) -> None:
    """The lock is a fence. Its session ends (pg_terminate_backend here, as a network cut would
    once the server's keepalive gives up) while the broker is blocked and has not noticed: its
    next write commits nothing, and once a second broker took the lock it stays refused."""
    async def scenario() -> None:
        broker = new_broker()
        first = PostgresStore(pg_url, clock=AFTER_ALL)
        async with opened(first):
            broker.publish("q", b"before")
            await first.write(broker.take_effects().changes)
            (holder,) = query(pg_url, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                              "AND granted AND objid = $1", LOCK_KEY)
            # Synchronous, so this loop reads nothing of it before the write below starts.
            assert query(pg_url, "SELECT pg_terminate_backend($1, 5000)", holder[0]) == [(True,)]
            broker.publish("q", b"after the lock was lost")
            late = broker.take_effects().changes
            with pytest.raises(StoreUnavailable):
                await first.write(late)
            async with opened(PostgresStore(pg_url, clock=AFTER_ALL)):
                await asyncio.sleep(MIN_BACKOFF_S + 0.05)  # the first one's next try reconnects...
                with pytest.raises(StoreUnavailable, match="in use by another mq broker"):
                    await first.write(late)  # ...and is refused the lock
        async with opened(PostgresStore(pg_url, clock=AFTER_ALL)) as recovered:
            assert [m.body for m in every_message(recovered)] == [b"before"]

    asyncio.run(scenario())


def test_a_database_of_a_newer_format_is_refused_untouched(pg_url: str) -> None:
    target = LogTarget("postgres", pg_url)
    asyncio.run(target.write_once(new_broker()))
    query(pg_url, "UPDATE meta SET value = $1 WHERE name = 'format_version'", FORMAT_VERSION + 1)
    with pytest.raises(StoreRefused, match=f"format version {FORMAT_VERSION + 1}, written by a "
                       "newer mq"):
        asyncio.run(target.reopen())
    assert target.rows("SELECT value FROM meta WHERE name = 'format_version'") == [
        (FORMAT_VERSION + 1,)]


def test_a_killed_server_fails_writes_and_the_store_writes_again_once_it_is_back(
        pg_server: PgServer, pg_url: str) -> None:
    async def scenario() -> None:
        broker = new_broker()
        store = PostgresStore(pg_url, clock=AFTER_ALL)
        async with opened(store):
            broker.publish("q", b"before")
            await store.write(broker.take_effects().changes)
            pg_server.kill()
            broker.publish("q", b"during")
            during = broker.take_effects().changes
            with pytest.raises(StoreUnavailable):
                await store.write(during)
            with pytest.raises(StoreUnavailable):  # a read, too, says so
                await store.history(1)
            pg_server.start()
            for _ in range(100):  # the backoff spaces the reconnects (at most 2 s)
                try:
                    await store.write(during)
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.1)
            assert [e["event"] for e in await store.history(2)] == ["published"]

    asyncio.run(scenario())
    recovered = asyncio.run(LogTarget("postgres", pg_url).reopen())
    assert [m.body for m in every_message(recovered)] == [b"before", b"during"]
