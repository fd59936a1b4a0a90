"""The kinds of command fields: how each is read from a binary request map and from a text token.

A command declares a field's kind in its annotation (`lease_s: Seconds | None = None`); the
registry reads the kinds back and derives both decoders from them. The type checker sees the
plain type (`float | None`), so a command stays an ordinary frozen dataclass.

Reading a field only converts what the mode sends (a text token to a number, a receipt string
to a Receipt); the command's constructor then checks bounds, for every mode alike. A few kinds
also check on the wire, before the constructor runs, so that a request with several bad fields
is answered about the same field as it always was.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, cast, get_args, get_type_hints

from mq.codec.values import Receipt, check_body, check_headers, check_name, check_queue
from mq.errors import bad_request


@dataclass(frozen=True, slots=True)
class Kind:
    """How a field is read. `wire` turns the map's value into the field's (None: taken as sent;
    `named`: it is called with the field name first; `whole_map`: it reads the whole map);
    `token` turns a text token into the value, given the field name for its message (None: the
    field has no text form of its own)."""

    wire: Callable[..., Any] | None = None
    token: Callable[[str, str], object] | None = None
    named: bool = False
    whole_map: bool = False


# Numbers in text mode (protocol.md 3.2): ASCII digits, and for seconds a fraction after a point
# with digits on both sides. Python's own float() and int() would also take `1_0`, `1e1`, `+5`,
# `.5`, `inf` and the digits of other scripts (Arabic-Indic `\u0661`).
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def number(token: str, name: str) -> float:
    if not _DECIMAL.fullmatch(token):
        raise bad_request(f"{name} must be a number of seconds like 30 or 2.5, got {token!r}")
    return float(token)


def integer(token: str, name: str) -> int:
    if not _INTEGER.fullmatch(token):
        raise bad_request(f"{name} must be an integer like 3, got {token!r}")
    return int(token)


def word(token: str, name: str) -> str:
    return token


def receipt(token: str, name: str) -> Receipt:
    return Receipt.parse(token)


def receipts(value: object) -> tuple[Receipt, ...]:
    if not isinstance(value, list):
        raise bad_request("receipts must be a list of receipt strings")
    return _plain_receipts(value) or tuple(Receipt.parse(r) for r in value)


# A batch ack holds up to thousands of receipts: when every one is plain ("17.2", ASCII digits,
# at most 20 each side), the batch is checked by one match of their join and read by one split,
# instead of a parse each. Anything else is parsed one by one, so it is answered as it was.
_RECEIPTS = re.compile(r"[0-9]{1,20}\.[0-9]{1,20}(?:,[0-9]{1,20}\.[0-9]{1,20})*")
# Receipt(msg_id, delivery) built in C: a NamedTuple's own __new__ is Python code, which here
# cost more than the parse.
_receipt_of = partial(tuple.__new__, Receipt)


def _plain_receipts(value: list[object]) -> tuple[Receipt, ...] | None:
    """`value` as receipts if every item is a plain receipt; None if one is not."""
    try:
        text = ",".join(cast(list[str], value))
    except TypeError:  # an item that is not a str
        return None
    if not _RECEIPTS.fullmatch(text):
        return None
    numbers = map(int, text.replace(",", ".").split("."))
    parsed = tuple(map(_receipt_of, zip(numbers, numbers, strict=True)))
    return parsed if len(parsed) == len(value) else None  # else an item held a comma


def bodies(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise bad_request("bodies must be a list of bin")
    return tuple(check_body(b) for b in value)


def headers_each(value: object) -> tuple[dict[str, str] | None, ...] | None:
    """mpub's headers: one map (or nil) per body, in the order of the bodies."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("headers of mpub must be a list: one map (or nil) per body")
    return tuple(check_headers(h) for h in value)


QueueName = Annotated[str, Kind(check_queue, word)]
Name = Annotated[str, Kind(check_name, word, named=True)]  # topic, consumer, group
Text = Annotated[str, Kind(token=word)]
Seconds = Annotated[float, Kind(token=number)]
Integer = Annotated[int, Kind(token=integer)]
ReceiptArg = Annotated[Receipt, Kind(Receipt.parse, receipt)]
Receipts = Annotated[tuple[Receipt, ...], Kind(receipts)]
Body = Annotated[bytes, Kind(check_body)]
Bodies = Annotated[tuple[bytes, ...], Kind(bodies)]
Key = Annotated[str, Kind(token=word)]  # checked by the constructor, for both modes alike
Headers = Annotated[dict[str, str], Kind(check_headers)]  # text mode: h.name=value (syntax.py)
HeadersEach = Annotated[tuple[dict[str, str] | None, ...], Kind(headers_each)]


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of a command as the decoders see it. `kind` None: not read from a request
    (the request id, or a value the form fixes); `default` is dataclasses.MISSING when the
    field must be given."""

    name: str
    kind: Kind | None
    default: object

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def kind_of(hint: object) -> Kind | None:
    """The Kind in a field's annotation; in `Seconds | None` it sits inside the union."""
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, Kind):
            return meta
    for arg in get_args(hint):
        kind = kind_of(arg)
        if kind is not None:
            return kind
    return None


def fields_of(cls: type) -> tuple[FieldInfo, ...]:
    """The fields of a command class, in constructor order, with their kinds and defaults."""
    hints = get_type_hints(cls, include_extras=True)
    return tuple(FieldInfo(f.name, kind_of(hints[f.name]), f.default)
                 for f in dataclasses.fields(cls))
