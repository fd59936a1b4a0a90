"""A throwaway PostgreSQL 15 cluster for the tests that run against the Postgres store.

`PgServer` runs initdb and postgres as the `postgres` user (Postgres refuses root), with the
data directory and its unix socket in a fresh directory under /tmp that user can reach, on a
free port of 127.0.0.1, with the server's default fsync settings. It is started once per test
session (`pg_server`); each test gets a database of its own (`pg_url`). `kill()` is a kill -9
of the whole server (the postmaster and its backends, as a machine death would leave it), and
`start()` brings it back on the same data and port; at the end it is killed by its PID and its
directory removed.

Where there is no Postgres binary, or no asyncpg, or no `postgres` user to run it as, the tests
that need it are skipped with a reason that says how to get it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import free_port

PG_BIN = Path(os.environ.get("MQ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
HOW_TO_GET = ("apt-get install postgresql-15 (or set MQ_TEST_PG_BIN to a PostgreSQL bin "
              "directory), and pip install 'mq[dev]' for asyncpg")
READY_WITHIN_S = 30.0
AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def why_no_postgres() -> str | None:
    """Why these tests cannot run here, or None if they can."""
    if not (PG_BIN / "postgres").exists() or not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL in {PG_BIN}: {HOW_TO_GET}"
    try:
        import asyncpg  # noqa: F401
    except ModuleNotFoundError:
        return f"asyncpg is not installed: {HOW_TO_GET}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return f"no `postgres` user to run the server as: {HOW_TO_GET}"
    if shutil.which("setpriv") is None:
        return "no setpriv (util-linux) to start Postgres as the postgres user"
    return None


class PgServer:
    def __init__(self, listen_addresses: str = "127.0.0.1") -> None:
        self.listen_addresses = listen_addresses  # comma-separated, as Postgres takes them
        self.root = Path(tempfile.mkdtemp(dir="/tmp", prefix="mq-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._copies_by_wal: bool | None = None  # CREATE DATABASE's default (Postgres 15 on)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A",
                   "trust", "-E", "UTF8", "--no-sync"])

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        """Start the server on its data directory and wait until it accepts connections."""
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [*AS_POSTGRES, str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.root), "-c", f"listen_addresses={self.listen_addresses}"],
            stdout=log, stderr=log, start_new_session=True)  # its own group, for kill()
        log.close()
        deadline = time.monotonic() + READY_WITHIN_S
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Postgres did not start:\n" + self.server_log())
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend, as a machine death would leave it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            # Backends are in the same process group; wait until none holds the shared memory,
            # or the restart would refuse to start beside them.
            deadline = time.monotonic() + 10
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; its URL.

        Copied as files, with a checkpoint (Postgres 15 would write the whole template to the
        WAL instead): so what a kill() leaves to recover is what was written since, not every
        database made before, whose flush at the end of recovery took 5-15 s on a busy disk."""
        name = f"mq_test_{os.getpid()}_{next(self._names)}"
        if self._copies_by_wal is None:
            self._copies_by_wal = int(self.query("SHOW server_version_num")[0][0]) >= 150000
        self.query(f"CREATE DATABASE {name}" + (" STRATEGY = FILE_COPY"
                                                   if self._copies_by_wal else ""))
        return self.url(name)

    def query(self, sql: str, *args: Any, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement outside any store; its rows as tuples."""
        return query(self.url(dbname), sql, *args)

    def server_log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _accepts(self) -> bool:
        try:
            self.query("SELECT 1")
        except Exception:
            return False
        return True

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run([*AS_POSTGRES, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the database at `url` (its `mq` schema first), outside any store;
    its rows as tuples. Callable from inside a running event loop."""
    return run_sync(_fetch(url, sql, *args))  # type: ignore[no-any-return]


async def _fetch(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5, server_settings={"search_path": "mq"})
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def run_sync(work: Any) -> Any:
    """Await `work` on a loop of its own, in a thread: callable from inside a running loop."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(asyncio.run(work))
        except BaseException as e:
            box.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = why_no_postgres()
    if reason is not None:
        pytest.skip(reason)
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh database on the session's server, restarted if a test killed it."""
    if pg_server.proc is None or pg_server.proc.poll() is not None:
        pg_server.start()
    return pg_server.new_database()


# A data error (SQLSTATE 22023) for one body, as for a value Postgres cannot take: run these on
# a log's database (search_path mq) and every row whose body is b"poison" is refused, and so is
# b"slow poison", a second later.
REFUSE_POISON = [
    "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
    "IF NEW.body = 'slow poison'::bytea THEN PERFORM pg_sleep(1); END IF; "
    "IF NEW.body IN ('poison'::bytea, 'slow poison'::bytea) THEN "
    "RAISE EXCEPTION 'poison refused by the test' USING ERRCODE = '22023'; END IF; "
    "RETURN NEW; END$$",
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON log FOR EACH ROW "
    "EXECUTE FUNCTION refuse_poison()",
]
