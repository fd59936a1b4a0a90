"""Where a broker's settings come from, and how each source names them.

Every `Config` field is one setting, reachable four ways, and the first that gives it wins:
  1. a flag of `mq serve`           --lease-s 30
  2. an environment variable        MQ_LEASE_S=30
  3. a key of the `--config` file   lease_s = 30        (TOML)
  4. Config's default
The three names are one: the field's name (or its `Setting.flag`, `--db` for `db_path`), with
dashes for the flag, in capitals after MQ_ for the variable, with underscores for the key.
Flags and variables are text and are read here by the field's type; the file's values must
already have the right TOML type. A value that makes no sense is refused by Config itself, and
the message names the setting as its source did (`--lease-s must be ...`), so a person knows
which line to fix.
"""

from __future__ import annotations

import json
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from mq.server.config import Config, Setting, SettingError, declared

ENV_PREFIX = "MQ_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


class SourceError(ValueError):
    """A setting could not be read or makes no sense; the message names where it came from."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting as the outside world names it."""

    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None is a value (not set)
    default: Any
    rule: Setting

    @property
    def flag(self) -> str:
        return self.rule.flag or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The key of the config file."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()


@dataclass(frozen=True, slots=True)
class Given:
    """A setting's value and where it came from: a flag, a variable or the file."""

    value: Any
    source: str


def _kind(hint: Any) -> tuple[type, bool]:
    if get_origin(hint) in (Union, types.UnionType):
        (kind,) = (a for a in get_args(hint) if a is not type(None))
        return kind, True
    return hint, False


def specs() -> list[Spec]:
    """Every setting of Config, in declaration order."""
    hints = get_type_hints(Config)
    return [Spec(f.name, *_kind(hints[f.name]), f.default, rule) for f, rule in declared()]


def _wrong(source: str, spec: Spec, value: Any) -> SourceError:
    return SourceError(f"{source} must be {_KIND_WORDS[spec.kind]}, got {value!r}")


def from_text(spec: Spec, text: str, source: str) -> Any:
    """The value of a flag or environment variable."""
    if spec.optional and text == "":
        return None
    if spec.kind is bool:
        if text.lower() not in (*_TRUE, *_FALSE):
            raise _wrong(source, spec, text)
        return text.lower() in _TRUE
    try:
        return spec.kind(text)
    except ValueError:
        raise _wrong(source, spec, text) from None


def from_toml(spec: Spec, value: Any, source: str) -> Any:
    """The value of a key of the config file: TOML already typed it."""
    # bool is an int to Python, not to TOML; an int is a fine float
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    fits = (isinstance(value, bool) if spec.kind is bool
            else isinstance(value, int) and number if spec.kind is int
            else number if spec.kind is float else isinstance(value, spec.kind))
    if not fits:
        raise _wrong(source, spec, value)
    return float(value) if spec.kind is float else value


def read_file(path: str) -> dict[str, Given]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise SourceError(f"cannot read the config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SourceError(f"{path} is not valid TOML: {e}") from None
    by_key = {s.key: s for s in specs()}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        raise SourceError(f"{path}: no setting is called {', '.join(unknown)}; "
                          "`mq serve --print-config` lists them all")
    return {by_key[key].name: Given(from_toml(by_key[key], value, f"{key} in {path}"),
                                    f"{key} in {path}")
            for key, value in data.items()}


def read_env(environ: Mapping[str, str]) -> dict[str, Given]:
    return {s.name: Given(from_text(s, environ[s.env], s.env), s.env)
            for s in specs() if s.env in environ}


def read_flags(flags: Mapping[str, Any]) -> dict[str, Given]:
    """The flags given (argparse leaves out those not given): text, or a bool for a switch."""
    return {s.name: Given(flags[s.name] if isinstance(flags[s.name], bool)
                          else from_text(s, flags[s.name], s.flag), s.flag)
            for s in specs() if s.name in flags}


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str],
            path: str | None) -> tuple[Config, dict[str, Given]]:
    """The effective Config, and where each setting that is not a default came from."""
    given = {**(read_file(path) if path else {}), **read_env(environ), **read_flags(flags)}
    flags_of = {s.name: s.flag for s in specs()}
    try:
        config = Config(**{name: g.value for name, g in given.items()})
    except SettingError as e:
        raise SourceError(e.explain(
            lambda n: given[n].source if n in given else flags_of[n])) from None
    return config, given


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    return repr(value)


def render(config: Config, given: Mapping[str, Given]) -> str:
    """The effective settings as a TOML file `--config` reads back, each with its help and,
    unless it is the default, where it came from."""
    out = ["# mq serve settings: flag > MQ_* environment variable > --config file > default"]
    for s in specs():
        value = getattr(config, s.name)
        source = f"  # from {given[s.name].source}" if s.name in given else ""
        line = (f"# {s.key} is not set" if value is None
                else f"{s.key} = {_toml_value(value)}{source}")
        out += [f"# {s.rule.help} ({s.flag}, {s.env})", line]
    return "\n".join(out)
