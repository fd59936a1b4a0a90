"""The users file: names, hashed secrets, and the queue-name patterns each permission covers.

```toml
version = 1

[users.alice]
secret = "scrypt$16384$8$1$...$..."
publish = ["jobs.*"]
consume = ["jobs.*"]
admin = []
inspect = ["*"]
```

Patterns are shell-style globs matched against the whole queue name, case-sensitively
(`fnmatch.fnmatchcase`): `*` is any run of characters, dots included (`jobs.*` covers `jobs.a`
and `jobs.a.b`), `?` one character, `[ab]` one of a set. A permission left out grants nothing.

The file is read with tomllib and written here (`save_users`), atomically: a new file beside it,
fsynced, renamed over the old one, so a broker reloading it (SIGHUP) reads the old or the new
file, never half of one. `version` is 1; a file of another version is refused, naming it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mq.auth.hashing import check_hash_form
from mq.auth.permissions import EVERY_QUEUE, Permission

FORMAT_VERSION = 1
MAX_USER_CHARS = 64
_USER_NAME = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_USER_CHARS}}}")
_PATTERN = re.compile(r"[A-Za-z0-9_.:{}*?\[\]!-]{1,200}")  # queue-name characters and glob ones


class UsersFileError(ValueError):
    """The users file cannot be used; the message says where and why."""


def check_user_name(name: object) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise ValueError(f"user name {name!r} is invalid: 1 to {MAX_USER_CHARS} characters of "
                         "A-Z a-z 0-9 _ - . :")
    return name


def check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        raise ValueError(f"queue pattern {pattern!r} is invalid: queue-name characters and the "
                         "glob characters * ? [ ] !")
    return pattern


@dataclass(frozen=True, slots=True)
class User:
    name: str
    secret_hash: str
    grants: Mapping[Permission, tuple[str, ...]]  # the patterns each permission covers
    _compiled: Mapping[Permission, re.Pattern[str]] = field(init=False, repr=False,
                                                            compare=False)

    def __post_init__(self) -> None:
        check_user_name(self.name)
        check_hash_form(self.secret_hash)
        for patterns in self.grants.values():
            for p in patterns:
                check_pattern(p)
        # One regex per permission, compiled once: a check costs one match per command.
        compiled = {perm: re.compile("|".join(fnmatch.translate(p) for p in patterns))
                    for perm, patterns in self.grants.items() if patterns}
        object.__setattr__(self, "_compiled", compiled)

    def may(self, permission: Permission, queue: str) -> bool:
        """Whether one of the user's patterns for `permission` covers `queue`."""
        regex = self._compiled.get(permission)
        return regex is not None and regex.match(queue) is not None

    def may_every(self, permission: Permission) -> bool:
        """Whether the user holds `permission` on every queue: a grant on `*`."""
        return EVERY_QUEUE in self.grants.get(permission, ())

    def with_secret(self, secret_hash: str) -> User:
        return User(self.name, secret_hash, self.grants)


@dataclass(frozen=True, slots=True)
class Users:
    by_name: Mapping[str, User]

    def get(self, name: str) -> User | None:
        return self.by_name.get(name)

    def with_user(self, user: User) -> Users:
        return Users({**self.by_name, user.name: user})

    def without(self, name: str) -> Users:
        return Users({n: u for n, u in self.by_name.items() if n != name})


def grants_of(table: Mapping[str, object], where: str) -> dict[Permission, tuple[str, ...]]:
    grants: dict[Permission, tuple[str, ...]] = {}
    for perm in Permission:
        patterns = table.get(perm.value, [])
        if not isinstance(patterns, list):
            raise UsersFileError(f"{where}: {perm.value} must be a list of queue patterns")
        try:
            grants[perm] = tuple(check_pattern(p) for p in patterns)
        except ValueError as e:
            raise UsersFileError(f"{where}: {e}") from None
    return grants


def _user(name: str, table: object, where: str) -> User:
    if not isinstance(table, dict):
        raise UsersFileError(f"{where}: [users.{name}] must be a table")
    unknown = set(table) - {"secret", *(p.value for p in Permission)}
    if unknown:
        raise UsersFileError(f"{where}: [users.{name}] has unknown keys {sorted(unknown)}; "
                             f"known: secret, {', '.join(p.value for p in Permission)}")
    secret = table.get("secret")
    if not isinstance(secret, str):
        raise UsersFileError(f"{where}: [users.{name}] has no secret (use `mq user passwd`)")
    try:
        return User(name, secret, grants_of(table, f"{where}: [users.{name}]"))
    except ValueError as e:
        raise UsersFileError(f"{where}: [users.{name}]: {e}") from None


def parse_users(text: str, where: str = "users file") -> Users:
    """The users of a file's text; UsersFileError says what is wrong and where."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsersFileError(f"{where} is not valid TOML: {e}") from None
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise UsersFileError(f"{where} has version {version!r}; this broker reads version "
                             f"{FORMAT_VERSION}")
    table = doc.get("users", {})
    if not isinstance(table, dict):
        raise UsersFileError(f"{where}: users must be a table of [users.<name>] tables")
    return Users({name: _user(name, t, where) for name, t in table.items()})


def load_users(path: str | Path) -> Users:
    """The users of the file at `path` (OSError if it cannot be read)."""
    return parse_users(Path(path).read_text(encoding="utf-8"), str(path))


def _toml_string(text: str) -> str:
    # Names and patterns hold only the characters checked above, so a JSON string of them is
    # also a TOML basic string; the check stays as a guard against a future looser rule.
    if not text.isprintable() or not text.isascii():
        raise ValueError(f"{text!r} cannot be written to the users file")
    return json.dumps(text)


def format_users(users: Users) -> str:
    out = ["# mq users file: edit with `mq user add|passwd|remove|list`; the broker rereads it",
           "# on SIGHUP. Secrets are scrypt hashes, never the secrets themselves.",
           f"version = {FORMAT_VERSION}", ""]
    for name in sorted(users.by_name):
        user = users.by_name[name]
        out.append(f"[users.{_toml_string(name)}]")
        out.append(f"secret = {_toml_string(user.secret_hash)}")
        for perm in Permission:
            patterns = ", ".join(_toml_string(p) for p in user.grants.get(perm, ()))
            out.append(f"{perm.value} = [{patterns}]")
        out.append("")
    return "\n".join(out)


def save_users(path: str | Path, users: Users) -> None:
    """Write `users` to `path` atomically, readable by its owner only."""
    target = Path(path)
    text = format_users(users)
    parse_users(text, str(target))  # what is written reads back
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it mode 0600
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def new_grants(pairs: Iterable[tuple[Permission, str]]) -> dict[Permission, tuple[str, ...]]:
    """Grants from (permission, pattern) pairs, as `mq user add --consume 'jobs.*'` gives them."""
    grants: dict[Permission, list[str]] = {perm: [] for perm in Permission}
    for perm, pattern in pairs:
        grants[perm].append(check_pattern(pattern))
    return {perm: tuple(p) for perm, p in grants.items()}
