"""Settings come from flags, MQ_* variables, a TOML file and Config's defaults, in that order;
whatever makes no sense is refused naming the setting as its source did."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from mq.server.config import Config, Setting, SettingError, declared
from mq.server.settings import SourceError, Spec, from_text, render, resolve, specs


def test_every_config_field_is_a_declared_setting_with_help() -> None:
    assert [f.name for f, _ in declared()] == [f.name for f in fields(Config)]
    assert all(rule.help for _, rule in declared())
    names = [(s.flag, s.env, s.key) for s in specs()]
    assert len({n[1] for n in names}) == len(names)  # no two settings share a variable
    assert ("--db", "MQ_DB", "db") in names and ("--prefetch", "MQ_PREFETCH", "prefetch") in names


def test_a_flag_beats_the_variable_which_beats_the_file_which_beats_the_default(
        tmp_path: Path) -> None:
    path = tmp_path / "mq.toml"
    path.write_text("lease_s = 5\ngrace_s = 6\nheartbeat_misses = 7\n")
    config, given = resolve({"lease_s": "1"}, {"MQ_LEASE_S": "2", "MQ_GRACE_S": "3"}, str(path))
    assert (config.lease_s, config.grace_s, config.heartbeat_misses) == (1.0, 3.0, 7)
    assert config.poison_deaths == Config().poison_deaths
    assert (given["lease_s"].source, given["grace_s"].source) == ("--lease-s", "MQ_GRACE_S")


@pytest.mark.parametrize(("flags", "env", "file", "said"), [
    ({"grace_s": "nan"}, {}, "", "--grace-s must be a finite number, got nan"),
    ({}, {"MQ_LEASE_S": "inf"}, "", "MQ_LEASE_S must be a finite number"),
    ({}, {}, "lease_s = nan", "lease_s in {path} must be a finite number"),
    ({}, {}, "port = 1.5", "port in {path} must be a whole number, got 1.5"),
    ({}, {}, "heartbeat_misses = true", "heartbeat_misses in {path} must be a whole number"),
    ({}, {}, "sync = 'fast'", "sync in {path} must be one of full, normal, got 'fast'"),
    ({}, {}, "lease_s = '30'", "lease_s in {path} must be a number, got '30'"),
    ({}, {}, "lease_s = 30\nleese_s = 3", "{path}: no setting is called leese_s"),
    ({}, {}, "lease_s = ", "{path} is not valid TOML"),
    ({"port": "seven"}, {}, "", "--port must be a whole number, got 'seven'"),
    ({"max_buffered_input_bytes": "2048"}, {}, "",
     "--max-buffered-input-bytes must be at least --max-frame-bytes"),
    ({"log_format": "xml"}, {}, "", "--log-format must be one of text, json"),
])
def test_nonsense_is_refused_naming_its_source(tmp_path: Path, flags: dict[str, str],
                                                env: dict[str, str], file: str, said: str) -> None:
    path = tmp_path / "mq.toml"
    path.write_text(file)
    with pytest.raises(SourceError) as refused:
        resolve(flags, env, str(path) if file else None)
    assert said.format(path=path) in str(refused.value)


def test_a_missing_config_file_is_said_so() -> None:
    with pytest.raises(SourceError) as refused:
        resolve({}, {}, "/nonexistent/mq.toml")
    assert "cannot read the config file /nonexistent/mq.toml" in str(refused.value)


def test_printed_settings_read_back_as_the_same_config(tmp_path: Path) -> None:
    config, given = resolve({"db_path": "/var/lib/mq/mq.db", "sync": "normal"},
                            {"MQ_KEEP_HISTORY_S": "0.5"}, None)
    path = tmp_path / "printed.toml"
    path.write_text(render(config, given))
    assert resolve({}, {}, str(path))[0] == config


def test_switches_and_optional_text_read_from_text() -> None:
    switch = Spec("insecure", bool, False, False, Setting("a switch"))
    assert [from_text(switch, t, "MQ_X") for t in ("1", "true", "YES", "off", "0")] == [
        True, True, True, False, False]
    with pytest.raises(SourceError, match="MQ_X must be true or false, got 'maybe'"):
        from_text(switch, "maybe", "MQ_X")
    path = Spec("users_file", str, True, None, Setting("optional text"))
    assert from_text(path, "", "MQ_USERS_FILE") is None
    assert from_text(path, "/etc/mq/users", "MQ_USERS_FILE") == "/etc/mq/users"


def test_a_config_made_in_code_is_held_to_the_same_rules() -> None:
    with pytest.raises(ValueError, match="grace_s must be a finite number"):
        Config(grace_s=float("nan"))


def test_the_http_side_port_beyond_loopback_needs_insecure_even_with_a_users_file() -> None:
    with pytest.raises(SettingError, match=r"http_host is 0\.0\.0\.0, beyond loopback"):
        Config(http_port=9711, http_host="0.0.0.0", users_file="users.toml")
    assert Config(http_port=9711, http_host="::1").http_host == "::1"
    assert Config(http_port=9711, http_host="0.0.0.0", insecure=True).insecure
    assert Config(http_port=None, http_host="0.0.0.0").http_port is None  # the port is off


@pytest.mark.parametrize(("db", "said"), [
    ("postgresql://u:p@h:99999/db", "Port out of range"),
    ("postgres://u@[::1/db", "Invalid IPv6 URL"),
])
def test_a_postgres_url_that_cannot_be_read_is_refused_as_a_setting(db: str, said: str) -> None:
    with pytest.raises(SettingError, match=said) as refused:
        Config(db_path=db)
    assert refused.value.explain(lambda name: "--db").startswith("--db is not a Postgres URL")
    assert Config(db_path="postgresql://u:p@[::1]:5432/db").db_path.endswith("/db")
