"""Access control without sockets: the check made after a HISTORY read, once the log names the
message's queue, fails closed when the caller is no longer who it was let through as."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from mq.auth.hashing import hash_secret
from mq.auth.permissions import Permission
from mq.auth.users import User, Users, new_grants, save_users
from mq.codec.commands import Auth
from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings
from mq.errors import Code, MQError
from mq.server.access import Access
from mq.server.config import Config


@dataclass
class Caller:
    user: str | None
    auth_failures: int = 0
    authenticating: bool = False
    peer: str = "127.0.0.1:1"


def access_for(tmp_path: Path, **grants: list[str]) -> Access:
    path = tmp_path / "users.toml"
    pairs = ((Permission(p), g) for p, gs in grants.items() for g in gs)
    save_users(path, Users({"alice": User("alice", hash_secret("a"), new_grants(pairs))}))
    core = Broker(FakeClock(), QueueSettings(retention_s=3600, lease_s=30))
    return Access(Config(users_file=str(path)), core)


def code_of(access: Access, caller: Caller, queue: str) -> Code | None:
    try:
        access.check(caller, Permission.INSPECT, queue)
    except MQError as e:
        return e.code
    return None


def test_the_check_after_a_log_read_needs_the_grant(tmp_path: Path) -> None:
    access = access_for(tmp_path, inspect=["jobs.*"])
    assert code_of(access, Caller("alice"), "jobs.a") is None
    assert code_of(access, Caller("alice"), "payroll") is Code.FORBIDDEN


@pytest.mark.parametrize("who", ["bob", None])  # removed by a reload; a new AUTH under way
def test_the_check_after_a_log_read_refuses_a_caller_who_is_nobody_now(
        tmp_path: Path, who: str | None) -> None:
    access = access_for(tmp_path, inspect=["*"])
    assert code_of(access, Caller(who), "jobs.a") is Code.UNAUTHENTICATED


def test_auths_beyond_max_concurrent_auth_checks_wait_their_turn_and_are_all_answered(
        tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    save_users(path, Users({"alice": User("alice", hash_secret("a"), new_grants(()))}))
    core = Broker(FakeClock(), QueueSettings(retention_s=3600, lease_s=30))
    access = Access(Config(users_file=str(path), max_concurrent_auth_checks=2,
                           auth_failure_delay_s=0), core)

    async def auth(secret: str) -> str:
        try:
            return (await access.authenticate(Auth(user="alice", secret=secret),
                                              Caller(None))).user
        except MQError as e:
            return e.code.value

    async def all_at_once() -> list[str]:
        return await asyncio.gather(auth("a"), auth("wrong"), auth("a"))

    assert asyncio.run(all_at_once()) == ["alice", "UNAUTHENTICATED", "alice"]
    assert access.checks_peak == 2
    assert access.checks_running == 0
