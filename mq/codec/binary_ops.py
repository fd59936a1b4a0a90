"""Binary mode: each op's request map to its command (protocol.md 2.3), derived from the registry.

A field is read from the map key of its name; a missing or nil value takes the field's default,
and its Kind's wire check, if any, runs on the value (fields.py). A SPEC's own `wire` reader
replaces this.

Theory of operation. pub, get and ack are read once per message, so a derived reader must cost
what a hand-written one does. Like `dataclasses` writing `__init__`, `reader` writes each
command's reader as straight-line code and compiles it once at import. Only names the registry
chose go into the source (field names, which are identifiers, and slot names); every value,
class and check is passed in the namespace, never as text.

The command is not built through its constructor: a frozen dataclass's `__init__` sets each
field through `object.__setattr__`, which looks the slot up on the class again for every field,
about half the cost of decoding a small pub (1.5 against 0.8 us for six fields). The reader sets
each slot through its own descriptor, field by field in the order `__init__` takes them, then
runs the class's `__post_init__` checks as `__init__` would; the result is the same frozen
instance:

    def read(m, rid):
        o = new(cls)
        s0(o, c0(m.get('queue')))
        s1(o, c1(m.get('body')))
        s2(o, m.get('key'))
        s3(o, rid)
        ...
        o.__post_init__()
        return o
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from mq.codec.commands import REGISTRY, Command
from mq.codec.fields import FieldInfo
from mq.codec.registry import Entry, Map

Reader = Callable[[Map, int | None], Command]


def _expression(i: int, f: FieldInfo, fixed: dict[str, object], env: dict[str, object]) -> str:
    """The source that reads field number `i` from the request map `m`."""
    if f.name == "rid":
        return "rid"
    kind = f.kind
    if f.name in fixed or kind is None:
        if f.name not in fixed and f.required:
            raise TypeError(f"field {f.name!r} has no kind: it cannot be read from a request")
        env[f"x{i}"] = fixed.get(f.name, f.default)
        return f"x{i}"
    if kind.whole_map:
        env[f"c{i}"] = kind.wire
        return f"c{i}(m)"
    value = f"m.get({f.name!r})"
    if not f.required and f.default is not None:
        env[f"d{i}"] = f.default
        value = f"(d{i} if (v := {value}) is None else v)"
    if kind.wire is None:
        return value
    env[f"c{i}"] = kind.wire
    return f"c{i}({f.name!r}, {value})" if kind.named else f"c{i}({value})"


def reader(entry: Entry) -> Reader:
    """The function that builds `entry`'s command from a request map and its rid."""
    if entry.spec.wire is not None:
        return entry.spec.wire
    cls = entry.cls
    env: dict[str, object] = {"cls": cls, "new": object.__new__}
    fixed = dict(entry.spec.fixed)
    body = ["    o = new(cls)"]
    for i, f in enumerate(entry.fields):
        slot = inspect.getattr_static(cls, f.name, None)
        if not inspect.ismemberdescriptor(slot):
            raise TypeError(f"{cls.__name__}.{f.name} is not a slot: commands are slotted "
                            "dataclasses")
        env[f"s{i}"] = slot.__set__
        body.append(f"    s{i}(o, {_expression(i, f, fixed, env)})")
    if hasattr(cls, "__post_init__"):
        body.append("    o.__post_init__()")
    exec("def read(m, rid):\n" + "\n".join([*body, "    return o"]) + "\n", env)
    read: Reader = env["read"]  # type: ignore[assignment]
    return read


READERS: dict[str, Reader] = {op: reader(e) for op, e in REGISTRY.by_op.items()}
