"""One broker per log: an exclusive lock on a file beside the database, held while it is open.

Two brokers on one log would both hand out the same ids and overwrite each other's work, so the
second one must be refused at start. The lock is flock(2) on `<db>.lock`, taken before the
file is opened, so the refusal comes at once with the pid of the broker that holds it (SQLite's
own exclusive locking mode, which the store also uses to save the file locking of every commit,
takes its lock only at the first write, and would make a second broker wait and then fail
with a bare "database is locked"). The kernel drops a flock when its process dies,
however it dies, so a SIGKILLed broker leaves no stale lock behind; the lock file itself stays
(removing it would race with a broker starting) and names the pid of its last holder, for the
message a refused broker gives.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path


class LogRefused(sqlite3.DatabaseError):
    """The log cannot be used; the message says why and what to do."""


class LogInUseError(LogRefused):
    """Another process (another broker, most likely) has the log open."""


class LogLock:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now, or raise `LogInUseError` at once (it never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LogInUseError(
                f"{self.db_path} is in use by another mq broker (pid {holder}, which holds "
                f"{self.path}); two brokers on one log would hand out the same ids. Stop that "
                "broker first, or give this one another --db") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
