"""The command registry: every command declares once how it is asked for and answered.

Theory of operation. Each command class carries a `SPEC` (or, when one class has several
forms, like BIND and UNBIND, a tuple of them): its binary op, its text verb and aliases, what
HELP says of it, which of its fields are text arguments, and the type of its reply. Its fields,
their defaults and how each is read (the `Kind` in the annotation, fields.py) are those of the
dataclass itself. `Registry.of(Command)` binds each SPEC to its class's fields as an `Entry`,
and from the entries come the tables the modes use: the binary readers by op (binary_ops.py),
the text parsers by verb (text.py), the entry of each command type and the HELP lines. So a
new command, or a new field, is written in one place: its class.

Who may run a command is declared in the SPEC too: `guard` names the permission it needs and
the fields that say on which queues (mq/server/access.py checks it), `before_auth` marks the
few commands a connection may send before it has authenticated.

Special text syntaxes (a body after options, trailing free text, `setting=V` tokens) are
declared in the SPEC too, as a syntax object (syntax.py); the default reads the text arguments
by position. This module imports no command: commands.py imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mq.auth.permissions import Permission
from mq.codec.fields import FieldInfo, fields_of
from mq.codec.replies import Done, Reply
from mq.codec.syntax import POSITIONAL
from mq.errors import MQError, bad_request

Map = dict[str, Any]
WireReader = Callable[[Map, int | None], Any]
"""Builds a command from a binary request map and its rid."""


class TextSyntax(Protocol):
    """How a command's text arguments are read (syntax.py has the ones in use)."""

    def parse(self, entry: Entry, rest: bytes) -> Any:
        """The command for the line's bytes after the verb (raw: not yet UTF-8 decoded)."""
        ...

    def synopsis(self, entry: Entry) -> str:
        """The usage after the verb, as HELP and usage errors show it."""
        ...


@dataclass(frozen=True, slots=True)
class Guard:
    """The permission a command needs, and the fields that name what it needs it on.

    Each field in `on` names a queue (or a topic) directly, or a message whose queue the core
    knows: a receipt, receipts, a msg_id. An empty `on` means the command is about every queue
    (QUEUES), and so is a None first field when `none_is_every` (STATS and MONITOR without a
    queue); those need the permission on `*`. Other None fields name nothing."""

    permission: Permission
    on: tuple[str, ...] = ("queue",)
    none_is_every: bool = False


@dataclass(frozen=True, slots=True)
class Spec:
    """How a command is asked for and answered; each command class declares one as `SPEC`.

    `op` is its binary op (None: text only), `verb` its text command (None: binary only) and
    `aliases` other verbs for it; `summary` is what HELP says it does. `args` are the fields
    given by position in text mode, in order: `<required>` ones first, then `[optional]`.
    `fixed` sets fields this form implies (UNBIND is BIND with `unbind` true). `synopsis`
    replaces the usage the syntax derives, where HELP has always said it differently. `wire`
    and `text` replace the derived readers for a syntax no field declaration can express;
    `reply` is the type of the reply its handler returns (replies.py), which each mode encodes.
    `guard` is the permission it needs (None: any authenticated connection may run it), and
    `before_auth` lets it run before authentication (PING, HELP, AUTH, QUIT).
    """

    op: str | None
    verb: str | None
    summary: str = ""
    args: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    fixed: Mapping[str, object] = field(default_factory=dict)
    synopsis: str | None = None
    wire: WireReader | None = None
    text: TextSyntax | None = None
    reply: type[Reply] = Done
    guard: Guard | None = None
    before_auth: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A Spec bound to its command class and that class's fields."""

    cls: type
    spec: Spec
    fields: tuple[FieldInfo, ...]
    syntax: TextSyntax

    @property
    def args(self) -> tuple[str, ...]:
        return self.spec.args

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.cls.__name__} has no field {name!r}")

    def build(self, values: Mapping[str, object]) -> Any:
        """The command from field values read in text mode; the rest take their defaults."""
        return self.cls(**values, **self.spec.fixed)

    def usage(self) -> str:
        """`GET <queue> [lease_s] [wait_s]`: the verb and its arguments."""
        synopsis = self.spec.synopsis
        if synopsis is None:
            synopsis = self.syntax.synopsis(self)
        return f"{self.spec.verb} {synopsis}" if synopsis else str(self.spec.verb)

    def usage_error(self) -> MQError:
        return bad_request(f"usage: {self.usage()}")

    def help_line(self, width: int) -> str:
        """The usage, padded to `width` characters, and what the command does."""
        return f"{self.usage():<{width}}  {self.spec.summary}"


@dataclass(frozen=True, slots=True)
class Registry:
    """Every command's entry, in HELP order, and the tables derived from them."""

    entries: tuple[Entry, ...]
    by_op: Mapping[str, Entry]
    by_verb: Mapping[str, Entry]  # aliases included
    by_type: Mapping[type, Entry]  # the first form of each class

    @classmethod
    def of(cls, classes: tuple[type, ...]) -> Registry:
        """The registry of `classes` (in HELP order), each carrying its SPEC."""
        entries = tuple(_bind(c, spec) for c in classes for spec in _specs(c))
        by_op: dict[str, Entry] = {}
        by_verb: dict[str, Entry] = {}
        by_type: dict[type, Entry] = {}
        for e in entries:
            if e.spec.op is not None:
                _add(by_op, e.spec.op, e)
            for verb in (e.spec.verb, *e.spec.aliases):
                if verb is not None:
                    _add(by_verb, verb, e)
            by_type.setdefault(e.cls, e)
        return cls(entries, by_op, by_verb, by_type)

    def help_lines(self) -> list[str]:
        """One line per text command; every summary starts after the widest usage."""
        listed = [e for e in self.entries if e.spec.verb is not None]
        width = max(len(e.usage()) for e in listed)
        return [e.help_line(width) for e in listed]


def _specs(cls: type) -> tuple[Spec, ...]:
    spec = getattr(cls, "SPEC", None)
    specs = spec if isinstance(spec, tuple) else (spec,)
    if not all(isinstance(s, Spec) for s in specs):
        raise TypeError(f"{cls.__name__} declares no SPEC")
    return specs


def _bind(cls: type, spec: Spec) -> Entry:
    entry = Entry(cls, spec, fields_of(cls), spec.text or POSITIONAL)
    for name in spec.args:
        f = entry.field(name)
        if f.kind is None or f.kind.token is None:
            raise TypeError(f"{cls.__name__}.{name} has no text form: it cannot be an argument")
    for name in spec.fixed:
        entry.field(name)
    for name in spec.guard.on if spec.guard is not None else ():
        entry.field(name)
    if not (isinstance(spec.reply, type) and issubclass(spec.reply, Reply)):
        raise TypeError(f"{cls.__name__} declares a reply that is not a Reply type")
    return entry


def _add(table: dict[str, Entry], name: str, entry: Entry) -> None:
    if name in table:
        raise TypeError(f"{name!r} is declared by {table[name].cls.__name__} and "
                        f"{entry.cls.__name__}")
    table[name] = entry
