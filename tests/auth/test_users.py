"""The users file and its checks, without a broker: hashing, patterns, the file's round trip."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mq.auth.hashing import hash_secret, verify
from mq.auth.permissions import Permission
from mq.auth.users import (
    User,
    Users,
    UsersFileError,
    load_users,
    new_grants,
    parse_users,
    save_users,
)
from mq.cli import main as cli_main
from mq.limits import MAX_SECRET_BYTES

HASH = hash_secret("open sesame")


def user(name: str = "alice", **grants: list[str]) -> User:
    return User(name, HASH, new_grants((Permission(p), g) for p, gs in grants.items()
                                       for g in gs))


def test_a_secret_is_stored_salted_and_checked_in_constant_time() -> None:
    again = hash_secret("open sesame")
    assert again != HASH and "open sesame" not in HASH  # a salt of its own, never the secret
    assert verify("open sesame", HASH) and verify("open sesame", again)
    assert not verify("open sesame ", HASH) and not verify("", HASH)


def test_patterns_are_globs_over_the_whole_name() -> None:
    u = user(consume=["jobs.*"], inspect=["b?ll"])
    assert u.may(Permission.CONSUME, "jobs.a") and u.may(Permission.CONSUME, "jobs.a.b")
    assert not u.may(Permission.CONSUME, "jobs") and not u.may(Permission.CONSUME, "xjobs.a")
    assert not u.may(Permission.PUBLISH, "jobs.a")  # a permission left out grants nothing
    assert u.may(Permission.INSPECT, "bill") and not u.may(Permission.INSPECT, "Bill")
    assert not u.may_every(Permission.INSPECT) and user(inspect=["*"]).may_every(
        Permission.INSPECT)


def test_the_file_reads_back_what_was_written_and_only_its_owner_may_read_it(
        tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    users = Users({"alice": user(consume=["jobs.*"]), "root": user("root", admin=["*"])})
    save_users(path, users)
    assert load_users(path) == users
    assert path.stat().st_mode & 0o077 == 0
    assert "open sesame" not in path.read_text()
    save_users(path, load_users(path).without("alice"))
    assert set(load_users(path).by_name) == {"root"}
    assert [p.name for p in tmp_path.iterdir()] == ["users.toml"]  # no temporary file left


@pytest.mark.parametrize(("text", "says"), [
    ("version = 2", "version 2"),
    ("not toml [", "not valid TOML"),
    ('version = 1\n[users.a]\npublish = ["q"]', "no secret"),
    (f'version = 1\n[users.a]\nsecret = "{HASH}"\npublsh = ["q"]', "unknown keys"),
    (f'version = 1\n[users.a]\nsecret = "{HASH}"\npublish = "q"', "must be a list"),
    (f'version = 1\n[users.a]\nsecret = "{HASH}"\npublish = ["a b"]', "pattern 'a b'"),
    ('version = 1\n[users.a]\nsecret = "hunter2"', "scrypt$n$r$p$salt$hash"),
    (f'version = 1\n[users."a b"]\nsecret = "{HASH}"', "user name 'a b'"),
])
def test_a_bad_file_is_refused_saying_where_and_why(text: str, says: str) -> None:
    with pytest.raises(UsersFileError, match=None) as caught:
        parse_users(text, "u.toml")
    assert says in str(caught.value) and "u.toml" in str(caught.value)


@pytest.mark.parametrize(("size", "code"), [(MAX_SECRET_BYTES, 0), (MAX_SECRET_BYTES + 1, 1)])
def test_mq_user_takes_a_secret_up_to_what_auth_takes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        size: int, code: int) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s" * size + "\n"))
    path = tmp_path / "users.toml"
    assert cli_main(["user", "add", "--file", str(path), "--secret-stdin", "bob"]) == code
    if code:
        assert f"a secret is at most {MAX_SECRET_BYTES} bytes" in capsys.readouterr().err
        assert not path.exists()
    else:
        assert load_users(path).get("bob") is not None
