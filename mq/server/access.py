"""Who may do what on this broker: AUTH, and the permission check before every command.

Without a users file every connection may do everything (the broker then listens on loopback
only, unless told `--insecure`). With one, a connection may send only the commands whose SPEC
says `before_auth` (PING, HELP, AUTH, QUIT) until AUTH succeeds; after that, each command's
`guard` (mq/codec/registry.py) names the permission it needs and the fields that name the
queues it needs it on. A receipt or a msg_id stands for the queue the message is in now, as
the core knows it; a message the broker no longer holds names no queue, and its command goes
on to answer LEASE_LOST or `gone`, which tells nothing about any queue. HISTORY of such a
message is checked once the log is read, on the queue its `published` event names.

A connection remembers only the name it authenticated as; its permissions are looked up in the
current table at every command, so a reload (SIGHUP) applies to open connections at once: a
changed grant from the next command on, a removed user's connections are refused every command
but PING, HELP, AUTH and QUIT.

A refused AUTH is answered `auth_failure_delay_s` later (a timer, not a blocked loop: other
connections go on), the connection's next commands wait behind it, and the
`max_auth_failures`-th refusal closes the connection. Secrets are checked in a worker thread:
scrypt costs ~50 ms of CPU by design; at most `max_concurrent_auth_checks` run at once, the
others wait their turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Protocol

from mq.auth.hashing import dummy_hash, verify
from mq.auth.permissions import EVERY_QUEUE, Permission
from mq.auth.users import User, Users, load_users
from mq.codec.commands import REGISTRY, Auth, Command
from mq.codec.registry import Guard
from mq.codec.replies import Authenticated
from mq.codec.values import Receipt
from mq.core.broker import Broker
from mq.errors import Code, MQError, bad_request
from mq.server.config import Config

log = logging.getLogger("mq.server")

NOT_YET = MQError(Code.UNAUTHENTICATED, "this broker needs AUTH <user> <secret> first (binary: "
                  "the auth op); until then only PING, HELP, AUTH and QUIT work")


class Caller(Protocol):
    """What access control knows of a connection."""

    user: str | None  # the name it authenticated as
    auth_failures: int
    authenticating: bool  # an AUTH is being checked: its next commands wait
    peer: str  # its address, for the log


class Access:
    def __init__(self, config: Config, core: Broker) -> None:
        self.config = config
        self.core = core
        self.users: Users | None = None
        # scrypt costs ~50 ms of CPU and 16 MiB each: an AUTH flood waits here for its turn
        # rather than filling the executor and the memory.
        self._checks = asyncio.Semaphore(config.max_concurrent_auth_checks)
        self.checks_running = 0
        self.checks_peak = 0  # the most that ever ran at once
        self.accepted = 0  # AUTHs that succeeded, since start
        self.refused = 0  # AUTHs refused (wrong user or secret), since start
        if config.users_file is not None:
            self.users = load_users(config.users_file)
            dummy_hash()  # made now, not during the first AUTH of an unknown name

    def reload(self) -> Users:
        """Read the users file again; the old table stays if the new one cannot be read."""
        assert self.config.users_file is not None
        self.users = load_users(self.config.users_file)
        return self.users

    # --- the check before each command --------------------------------------------------------

    def refusal(self, caller: Caller, command: Command) -> MQError | None:
        """Why `caller` may not run `command`, or None if it may."""
        users = self.users
        if users is None:
            return None
        spec = REGISTRY.by_type[type(command)].spec
        if spec.before_auth:
            return None
        user = _current(users, caller)
        if isinstance(user, MQError):
            return user
        guard = spec.guard
        if guard is None:
            return None
        for what, name in self._targets(guard, command):
            error = self._forbidden(user, guard.permission, what, name)
            if error is not None:
                return error
        return None

    def acts_as_user(self, caller: Caller) -> bool:
        """Whether `caller` acts as a user of the current table (always, without one)."""
        return self.users is None or not isinstance(_current(self.users, caller), MQError)

    def check(self, caller: Caller, permission: Permission, queue: str) -> None:
        """Raise FORBIDDEN unless `caller` holds `permission` on `queue`, UNAUTHENTICATED if it
        is no longer authenticated (a reload removed its user, or a new AUTH is under way,
        since its command was let through)."""
        users = self.users
        if users is None:
            return
        user = _current(users, caller)
        if isinstance(user, MQError):
            raise user
        error = self._forbidden(user, permission, "queue", queue)
        if error is not None:
            raise error

    def may(self, caller: Caller, permission: Permission, queue: str | None) -> bool:
        """Whether `caller` holds `permission` on `queue` (None: on every queue) now."""
        users = self.users
        if users is None:
            return True
        user = _current(users, caller)
        if isinstance(user, MQError):
            return False
        return self._forbidden(user, permission, "queue", queue or EVERY_QUEUE) is None

    def _targets(self, guard: Guard, command: Command) -> Iterator[tuple[str, str]]:
        """(what, name) for each queue or topic `command` needs the guard's permission on."""
        if not guard.on:
            yield "queue", EVERY_QUEUE
        for i, field in enumerate(guard.on):
            value = getattr(command, field)
            if value is None:
                if i == 0 and guard.none_is_every:
                    yield "queue", EVERY_QUEUE
            elif isinstance(value, str):
                yield ("topic" if field == "topic" else "queue"), value
            else:
                receipts = value if isinstance(value, tuple) else (value,)
                for r in receipts:
                    queue = self.core.queue_of(r.msg_id if isinstance(r, Receipt) else r)
                    if queue is not None:
                        yield "queue", queue

    @staticmethod
    def _forbidden(user: User, permission: Permission, what: str, name: str) -> MQError | None:
        if name == EVERY_QUEUE:
            if user.may_every(permission):
                return None
            return MQError(Code.FORBIDDEN, f"user {user.name!r} lacks the {permission} "
                           f"permission on every queue ('*'), which this form needs; name "
                           "one queue instead")
        if user.may(permission, name):
            return None
        granted = ", ".join(user.grants.get(permission, ())) or "no queue"
        return MQError(Code.FORBIDDEN, f"user {user.name!r} lacks the {permission} permission "
                       f"on {what} {name!r} (granted on: {granted})")

    # --- AUTH ---------------------------------------------------------------------------------

    async def authenticate(self, command: Auth, caller: Caller) -> Authenticated:
        """Check the secret off the loop; a refusal is answered late and counted."""
        users = self.users
        if users is None:
            raise bad_request("this broker has no users file: connect without credentials")
        caller.user = None  # until this AUTH succeeds, whoever it was before
        caller.authenticating = True
        try:
            user = users.get(command.user)
            stored = dummy_hash() if user is None else user.secret_hash
            secret = command.secret or ""
            if await self._verify(secret, stored) and user is not None:
                caller.user = user.name
                self.accepted += 1
                log.info("%s authenticated as %s", caller.peer, user.name)
                return Authenticated(user.name)
            caller.auth_failures += 1
            self.refused += 1
            await asyncio.sleep(self.config.auth_failure_delay_s)
            raise self._refused(command.user, caller)
        finally:
            caller.authenticating = False

    def figures(self) -> dict[str, int]:
        """STATS' figures of AUTH."""
        return {"auth_accepted": self.accepted, "auth_refused": self.refused,
                "auth_checks_running": self.checks_running}

    async def _verify(self, secret: str, stored: str) -> bool:
        async with self._checks:
            self.checks_running += 1
            self.checks_peak = max(self.checks_peak, self.checks_running)
            try:
                return await asyncio.to_thread(verify, secret, stored)
            finally:
                self.checks_running -= 1

    def _refused(self, name: str, caller: Caller) -> MQError:
        left = self.config.max_auth_failures - caller.auth_failures
        log.warning("refused AUTH as %r from %s (failure %d of %d on this connection%s)", name,
                    caller.peer, caller.auth_failures, self.config.max_auth_failures,
                    "; closing it" if left <= 0 else "")
        if left <= 0:
            return MQError(Code.UNAUTHENTICATED, "wrong user or secret; too many failures, "
                           "closing the connection", fatal=True)
        return MQError(Code.UNAUTHENTICATED, f"wrong user or secret ({left} more attempts on "
                       "this connection)")


def _current(users: Users, caller: Caller) -> User | MQError:
    """The user `caller` acts as now, or why it acts as nobody."""
    if caller.user is None:
        return NOT_YET
    user = users.get(caller.user)
    if user is None:
        return MQError(Code.UNAUTHENTICATED, f"user {caller.user!r} was removed from the users "
                       "file; AUTH as another user")
    return user
