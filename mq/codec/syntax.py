"""Text syntaxes: how a command's arguments are read from the rest of its line (protocol.md 3.2).

Most commands take their arguments by position (`POSITIONAL`); a few have a syntax of their
own, which their SPEC names: options and a raw body (PUB, FANOUT), free text after the
arguments (NACK), one or many receipts (ACK), `setting=V` tokens (DECLARE). Each converts a
token with its field's Kind and leaves bounds to the command's constructor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from mq.codec.escape import unescape_body
from mq.codec.fields import FieldInfo, Key, fields_of, kind_of
from mq.codec.options import PLAIN, PublishOptions
from mq.codec.values import check_headers
from mq.errors import MQError, bad_request


class Entry(Protocol):
    """What a syntax reads of a command's registry entry (registry.Entry)."""

    @property
    def args(self) -> tuple[str, ...]:
        """The fields given by position, in order."""
        ...

    def field(self, name: str) -> FieldInfo: ...

    def usage(self) -> str: ...

    def build(self, values: Mapping[str, object]) -> Any: ...

    def usage_error(self) -> MQError: ...


def utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{name} must be UTF-8 text") from None


_BLANKS = re.compile(r"[ \t]+")
BLANKS = " \t"  # what separates tokens; str.split() would also split at any Unicode space


def tokens(text: str, most: int = 0) -> list[str]:
    """The blank-separated tokens of `text`; with `most`, at most `most` of them and then the
    rest of the text, trimmed."""
    text = text.strip(BLANKS)
    return _BLANKS.split(text, maxsplit=most) if text else []


def read_args(entry: Entry, given: list[str], most: int | None = None) -> dict[str, object]:
    """The text arguments of `entry` from the tokens `given`, by position; absent ones keep
    their default.

    Fewer tokens than the required arguments, or more than `most` (default: one per argument),
    is answered with the usage."""
    names = entry.args
    least = sum(1 for name in names if entry.field(name).required)
    if not least <= len(given) <= (len(names) if most is None else most):
        raise entry.usage_error()
    values: dict[str, object] = {}
    for name, token in zip(names, given, strict=False):
        kind = entry.field(name).kind
        assert kind is not None and kind.token is not None  # the registry checked
        values[name] = kind.token(token, name)
    return values


def positional_synopsis(entry: Entry) -> str:
    return " ".join(f"<{name}>" if entry.field(name).required else f"[{name}]"
                    for name in entry.args)


class Positional:
    """`VERB <a> [b] [c]`: the SPEC's args, by position."""

    def parse(self, entry: Entry, rest: bytes) -> Any:
        return entry.build(read_args(entry, tokens(utf8(rest, "arguments"))))

    def synopsis(self, entry: Entry) -> str:
        return positional_synopsis(entry)


POSITIONAL = Positional()


class Trailing:
    """`VERB <a> [b] [free text]`: after the args, the rest of the line, trimmed, is `field`."""

    def __init__(self, field: str, label: str, most_tokens: int) -> None:
        self.field = field
        self.label = label
        self.most_tokens = most_tokens

    def parse(self, entry: Entry, rest: bytes) -> Any:
        text = utf8(rest, "arguments")
        given = tokens(text)
        values = read_args(entry, given, self.most_tokens)
        n = len(entry.args)
        if len(given) > n:
            values[self.field] = tokens(text, most=n)[n]
        return entry.build(values)

    def synopsis(self, entry: Entry) -> str:
        return f"{positional_synopsis(entry)} [{self.label}]"


class OneOrMany:
    """`VERB <a> [a ...]`: one token is the command itself, several are the batch command
    `many`, whose first field takes them all."""

    def __init__(self, many: type, most: int) -> None:
        self.many = many
        self.many_field = fields_of(many)[0].name
        self.most = most

    def parse(self, entry: Entry, rest: bytes) -> Any:
        given = tokens(utf8(rest, "arguments"))
        values = read_args(entry, given, self.most)
        if len(given) == 1:
            return entry.build(values)
        (name,) = entry.args
        kind = entry.field(name).kind
        assert kind is not None and kind.token is not None  # the registry checked
        return self.many(**{self.many_field: tuple(kind.token(t, name) for t in given)})

    def synopsis(self, entry: Entry) -> str:
        (name,) = entry.args
        return f"<{name}> [{name} ...]"


class Settings:
    """`VERB <a> [name=V ...]`: after the args, any of `names` as `name=value` tokens."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def parse(self, entry: Entry, rest: bytes) -> Any:
        given = tokens(utf8(rest, "arguments"))
        n = len(entry.args)
        values = read_args(entry, given, n + len(self.names))
        for token in given[n:]:
            name, eq, value = token.partition("=")
            kind = entry.field(name).kind if name in self.names else None
            if not eq or kind is None or kind.token is None:
                raise bad_request(f"unknown setting {token!r}: use "
                                  + " ".join(f"{known}=V" for known in self.names))
            values[name] = kind.token(value, name)
        return entry.build(values)

    def synopsis(self, entry: Entry) -> str:
        return f"{positional_synopsis(entry)} [setting=V ...]"


# Publish options in text mode: their names, in the order HELP lists them, and the fields they
# set (`key` is the command's own; the others are PublishOptions).
PUB_OPTIONS: Mapping[str, str] = {
    "key": "key", "priority": "priority", "delay_s": "delay_s", "not_before": "not_before",
    "ttl_s": "ttl_s", "dedup": "dedup_id",
}
_OPTION_KINDS = {f.name: f.kind for f in fields_of(PublishOptions)} | {"key": kind_of(Key)}


def _unknown_option(entry: Entry, token: bytes) -> MQError:
    """The refusal of `token`: the options there are, and how to send it as a body instead."""
    known = " ".join(f"{option}=" for option in PUB_OPTIONS) + " h.<name>="
    option = token.partition(b"=")[0].decode()
    verb, target = entry.usage().split(" ", 2)[:2]
    return bad_request(f"unknown option {option!r:.40}: the options are {known}; put -- before a "
                       f"body that starts like an option: {verb} {target} -- {option:.40}=...")


_OPTION_LIKE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*=")  # what a person means as an option
_HEADER_LIKE = re.compile(rb"h\.[^ =]*=")  # a header: h.<name>=<value>


def _next_token(text: bytes) -> tuple[bytes, bytes, bytes]:
    """The next token of the line, the space after it (if any) and the rest. A header's value
    may be quoted as replies print it (`h.note='two words'`): its token ends at the quote."""
    head = _HEADER_LIKE.match(text)
    if head is not None and text[head.end():head.end() + 1] == b"'":
        close = text.find(b"'", head.end() + 1)
        if close > 0 and text[close + 1:close + 2] in (b" ", b""):
            return text[:close + 1], text[close + 1:close + 2], text[close + 2:]
    return text.partition(b" ")


def _header_value(raw: bytes) -> str:
    """A header's value as typed: escaped like a body (protocol.md 3.1), maybe in quotes."""
    if len(raw) >= 2 and raw.startswith(b"'") and raw.endswith(b"'"):
        raw = raw[1:-1]
    return utf8(unescape_body(raw), "a header value")


class Publishing:
    """`VERB <name> [option=V ...] [--] <body>`: exactly one space after the name; the body is
    the raw rest of the line, unescaped. Headers are options too, `h.<name>=<value>`, the value
    escaped like a body (or quoted, as replies print it). Options are known names only: a
    token that looks like one (`delay=60`) but is not is refused rather than taken for the
    body, and `--` ends the options, for a body that itself starts like one. Options with
    nothing after them are no body at all (`PUB q key=k`), like `PUB q` without its space."""

    def parse(self, entry: Entry, rest: bytes) -> Any:
        name, space, body = rest.partition(b" ")
        if not space:
            raise entry.usage_error()
        given: dict[str, object] = {}
        headers: dict[str, str] = {}
        while True:
            token, space, remainder = _next_token(body)
            if token == b"--":
                body = remainder
                break
            header = _HEADER_LIKE.match(token)
            if header is not None:
                if not space:
                    raise entry.usage_error()
                header_name = utf8(token[2 : header.end() - 1], "a header name")
                if header_name in headers:
                    raise bad_request(f"header {header_name!r:.40} is given twice")
                headers[header_name] = _header_value(token[header.end() :])
                body = remainder
                continue
            if not _OPTION_LIKE.match(token):
                break
            option, _, raw = token.partition(b"=")
            text_name = option.decode()
            field = PUB_OPTIONS.get(text_name)
            if field is None:
                raise _unknown_option(entry, token)
            if not space:
                raise entry.usage_error()
            kind = _OPTION_KINDS[field]
            assert kind is not None and kind.token is not None
            given[field] = kind.token(utf8(raw, text_name), text_name)
            body = remainder
        key = given.pop("key", None)
        options = PublishOptions(**given) if given else PLAIN  # type: ignore[arg-type]
        (target,) = entry.args
        return entry.build({target: name.decode("ascii", errors="replace"),
                            "body": unescape_body(body), "key": key, "options": options,
                            "headers": check_headers(headers)})

    def synopsis(self, entry: Entry) -> str:
        (target,) = entry.args
        return f"<{target}> [option=V ...] [--] <body>"


PUBLISHING = Publishing()
