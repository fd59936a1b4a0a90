"""Every setting of a broker, declared once: its default, its help text, its bounds.

A setting is one `setting(...)` field of `Config`; the `mq serve` flag (`--lease-s`), the
environment variable (`MQ_LEASE_S`) and the key of the `--config` TOML file (`lease_s`) are
all derived from it (mq/server/settings.py), and so is `mq serve --print-config`. Adding a
setting is adding a field here; its checks (bounds, choices, finite numbers) are declared with
it and run by `Config` itself, so a Config made in code is held to them too.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

from mq.limits import (
    DEFAULT_PREFETCH,
    MAX_DELIVERIES,
    MAX_FRAME_BYTES_CEILING,
    MAX_HEARTBEAT_S,
    MAX_LEASE_S,
    MAX_PREFETCH,
    MAX_RETENTION_S,
    MIN_HEARTBEAT_S,
    MIN_LEASE_S,
    MIN_RETENTION_S,
)
from mq.storage.sqlite import SYNC_MODES
from mq.storage.urls import url_problem

DEFAULT_PORT = 7711
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_SETTING = "mq.setting"


@dataclass(frozen=True, slots=True)
class Setting:
    """What a person sees of one Config field: the help text and what values make sense.

    `low`/`high`: inclusive bounds of a number (None: unbounded on that side); `choices`: the
    only values a text setting may take; `flag`: the `mq serve` flag when it is not the field
    name with dashes (`--db` for `db_path`).
    """

    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    flag: str = ""


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = (), flag: str = "") -> Any:
    """A Config field with its `Setting`: the one place a setting is declared."""
    return field(default=default,
                 metadata={_SETTING: Setting(help, low, high, choices, flag)})


def declared() -> list[tuple[Field[Any], Setting]]:
    """Every Config field with its `Setting`, in declaration order."""
    return [(f, f.metadata[_SETTING]) for f in fields(Config)]


class SettingError(ValueError):
    """A setting's value makes no sense. `problem` may name other settings as `{name}`;
    `explain` writes every setting as the caller calls it (a flag, a variable, a file key)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name = name
        self.problem = problem

    def explain(self, label: Any = str) -> str:
        names = {f.name: label(f.name) for f in fields(Config)}
        return f"{label(self.name)} {self.problem.format_map(names)}"

    def __str__(self) -> str:
        return self.explain()


def _unit(name: str) -> str:
    return " seconds" if name.endswith("_s") else " bytes" if name.endswith("_bytes") else ""


def check(name: str, value: Any, rule: Setting) -> None:
    """Raise SettingError unless `value` fits `rule` (finite, within bounds, a choice)."""
    if rule.choices and value not in rule.choices:
        raise SettingError(name, f"must be one of {', '.join(rule.choices)}, got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if not math.isfinite(value):
        raise SettingError(name, f"must be a finite number, got {value!r}")
    low = -math.inf if rule.low is None else rule.low
    high = math.inf if rule.high is None else rule.high
    if not low <= value <= high:
        span = (f"{low:g} .. {high:g}" if rule.high is not None else f"at least {low:g}")
        raise SettingError(name, f"must be {span}{_unit(name)}, got {value:g}")


_BOUND = 2**40  # what "at least 1" bounds reach at most: no buffer of the broker is that big


@dataclass(frozen=True, slots=True)
class Config:
    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(DEFAULT_PORT, "TCP port, 0 for any free one", low=0, high=65535)
    db_path: str = setting("data/mq.db", "the log: an SQLite file, or a Postgres database as a "
                           "libpq-style URL, postgresql://user@host:port/dbname", flag="--db")
    sync: str = setting("full", "full: a confirmation survives power loss; normal: it survives "
                        "a killed broker only", choices=SYNC_MODES)
    log_level: str = setting("info", "least severe log lines written", choices=LOG_LEVELS)
    log_format: str = setting("text", "text: one line per record; json: one JSON object per "
                              "line", choices=LOG_FORMATS)
    max_frame_bytes: int = setting(8 * 1024 * 1024, "largest binary frame accepted",
                                   low=1024, high=MAX_FRAME_BYTES_CEILING)
    max_line_bytes: int = setting(1024 * 1024, "longest text line accepted", low=64,
                                  high=MAX_FRAME_BYTES_CEILING)
    max_unauthenticated_frame_bytes: int = setting(64 * 1024, "largest binary frame accepted "
                                                   "before AUTH, with a users file", low=4096,
                                                   high=MAX_FRAME_BYTES_CEILING)
    lease_s: float = setting(30.0, "default visibility timeout of a queue, seconds",
                             low=MIN_LEASE_S, high=MAX_LEASE_S)
    retention_s: float = setting(4 * 86_400.0, "default retention of a queue, seconds",
                                 low=MIN_RETENTION_S, high=MAX_RETENTION_S)
    heartbeat_s: float = setting(1.0, "default heartbeat interval of consumer sessions, seconds",
                                 low=MIN_HEARTBEAT_S, high=MAX_HEARTBEAT_S)
    heartbeat_misses: int = setting(3, "missed heartbeats before a session is dead", low=1,
                                    high=1_000)
    grace_s: float = setting(3.0, "how long a disconnected session waits for its consumer to "
                             "reconnect, seconds", low=0, high=86_400)
    poison_deaths: int = setting(3, "consumer deaths with a message before it is set aside",
                                 low=1, high=MAX_DELIVERIES)
    default_prefetch: int = setting(DEFAULT_PREFETCH, "default credit of a group member",
                                    low=1, high=MAX_PREFETCH, flag="--prefetch")
    ring_vnodes: int = setting(512, "points per member on a group's hash ring", low=1,
                               high=100_000)
    keep_history_s: float = setting(60.0, "how long acked messages stay in the log for "
                                    "HISTORY before compaction, seconds", low=0,
                                    high=MAX_RETENTION_S)
    # Bounds on what one client can make the broker hold (protocol.md section 7).
    write_buffer_high_bytes: int = setting(4 * 1024 * 1024, "replies not yet read by a client "
                                           "before its commands wait", low=1, high=_BOUND)
    max_backlog_commands: int = setting(10_000, "commands read but not yet executed, before "
                                        "reading pauses", low=1, high=_BOUND)
    max_unconfirmed_replies: int = setting(10_000, "replies waiting for a commit, before "
                                           "reading pauses", low=1, high=_BOUND)
    max_waiting_gets: int = setting(1_000, "long-poll GETs one connection may have waiting",
                                    low=1, high=_BOUND)
    max_log_reads: int = setting(16, "HISTORY reads one connection may have running at once",
                                 low=1, high=_BOUND)
    max_buffered_input_bytes: int = setting(256 * 1024 * 1024, "unfinished frames of all "
                                            "clients together", low=1024, high=_BOUND)
    max_commit_changes: int = setting(20_000, "changes per group commit (one round may exceed "
                                      "it)", low=1, high=_BOUND)
    max_body_memory_bytes: int = setting(0, "bytes of queued bodies kept in memory, in all; "
                                         "beyond, bodies stay in the log and are read back "
                                         "when delivered (plain messages only); 0: no limit",
                                         low=0, high=2**62)
    shutdown_timeout_s: float = setting(10.0, "how long shutdown waits for the last commit, "
                                        "seconds", low=0, high=3_600)
    # Who may connect and do what (protocol.md section 9).
    users_file: str | None = setting(None, "users file (see `mq user add`): clients must AUTH "
                                     "and may do only what it grants; SIGHUP rereads it",
                                     flag="--users")
    insecure: bool = setting(False, "serve a non-loopback --host without --users, or a "
                             "non-loopback --http-host, open to anyone")
    tls_cert: str | None = setting(None, "PEM certificate chain: the port then speaks TLS only")
    tls_key: str | None = setting(None, "the certificate's PEM private key")
    tls_ca: str | None = setting(None, "PEM CA: clients must present a certificate it signed")
    tls_handshake_timeout_s: float = setting(10.0, "time a TLS client has to send its first "
                                             "byte, and again to finish its handshake, "
                                             "seconds", low=0.01, high=3_600)
    auth_failure_delay_s: float = setting(1.0, "a refused AUTH is answered this much later, "
                                          "seconds", low=0, high=60)
    max_auth_failures: int = setting(3, "refused AUTHs per connection; the last one closes it",
                                     low=1, high=1_000)
    max_concurrent_auth_checks: int = setting(4, "secrets checked at once (scrypt: ~50 ms, "
                                              "16 MiB each); more AUTHs wait their turn",
                                              low=1, high=1_000)
    # The HTTP side port: /metrics, /healthz, /readyz and the dashboard (protocol.md section 10).
    http_port: int | None = setting(None, "port of the HTTP side port (/metrics, /healthz, "
                                    "/readyz, the dashboard); unset: off, 0: any free one",
                                    low=0, high=65535)
    http_host: str = setting("127.0.0.1", "address of the HTTP side port")
    http_max_request_bytes: int = setting(16 * 1024, "request line and headers of one HTTP "
                                          "request", low=64, high=_BOUND)
    http_max_headers: int = setting(64, "header lines of one HTTP request", low=1, high=_BOUND)
    http_max_connections: int = setting(32, "HTTP connections open at once; one more gets 503",
                                        low=1, high=_BOUND)
    http_timeout_s: float = setting(10.0, "time to send an HTTP request head, and again to "
                                    "read the response, seconds", low=0.001, high=3_600)
    # Clustered mode (mq/cluster, protocol.md 11): several brokers over one Postgres log.
    cluster: str | None = setting(None, "serve as a member of this cluster (needs --node, "
                                  "--etcd and a postgresql:// --db)")
    node: str | None = setting(None, "this broker's id in its cluster, unique and stable")
    etcd: str | None = setting(None, "etcd endpoints of the cluster, host:port[,host:port...]")
    advertise: str | None = setting(None, "host:port clients reach this broker at (default: "
                                    "--host:--port)")
    cluster_ttl_s: int = setting(3, "etcd lease of a member: a broker silent this long loses "
                                 "its slots", low=2, high=60)
    cluster_poll_s: float = setting(0.5, "how often a member reads the slot map from etcd",
                                    low=0.05, high=10)
    cluster_store_timeout_s: float = setting(5.0, "a member whose database has not answered "
                                             "for this long gives up its slots and its etcd "
                                             "membership until it answers again, seconds",
                                             low=0.5, high=300)

    def __post_init__(self) -> None:
        for f in fields(self):
            check(f.name, getattr(self, f.name), f.metadata[_SETTING])
        if self.max_buffered_input_bytes < self.max_frame_bytes:
            raise SettingError("max_buffered_input_bytes",
                               "must be at least {max_frame_bytes} "
                               f"({self.max_frame_bytes} bytes)")
        problem = url_problem(self.db_path)
        if problem is not None:
            raise SettingError("db_path", f"is not a Postgres URL mq can read ({problem}): "
                               "postgresql://user:password@host:port/dbname, the host of an "
                               "IPv6 address in brackets")
        self._check_security()
        self._check_cluster()

    def _check_cluster(self) -> None:
        if self.cluster is None:
            for name in ("node", "etcd", "advertise"):
                if getattr(self, name) is not None:
                    raise SettingError(name, "needs {cluster}")
            return
        for name in ("node", "etcd"):
            if not getattr(self, name):
                raise SettingError("cluster", f"needs {{{name}}}")
        for name in ("cluster", "node"):
            if "/" in (getattr(self, name) or "/"):
                raise SettingError(name, "is a name without '/'")
        if not self.db_path.startswith(("postgresql://", "postgres://")):
            raise SettingError("cluster", "needs a postgresql:// {db_path}: the brokers of a "
                               "cluster share one database")
        if self.advertise is not None and not self.advertise.rpartition(":")[2].isdigit():
            raise SettingError("advertise", "is host:port")
        if self.max_body_memory_bytes:
            raise SettingError("max_body_memory_bytes", "is not supported with {cluster} yet: a "
                               "slot taken over loads every body of its queues")

    def _check_security(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingError("tls_cert", "and {tls_key} go together")
        if self.tls_ca is not None and self.tls_cert is None:
            raise SettingError("tls_ca", "(client certificates) needs {tls_cert} and {tls_key}")
        if self.users_file is None and not self.insecure and not is_loopback(self.host):
            where = self.host or "every address"
            raise SettingError("host", f"is {where}, beyond loopback: refusing to serve {where} "
                               "without {users_file}: anyone "
                               "who reaches the port could read and delete every message; give "
                               "{users_file} (see `mq user add`), or {insecure} to serve open")
        if self.http_port is not None and not self.insecure and not is_loopback(self.http_host):
            where = self.http_host or "every address"
            # The side port asks nobody who they are, users file or not (protocol.md section 10).
            raise SettingError("http_host", f"is {where}, beyond loopback: the HTTP side port "
                               "has no logins, so anyone who reaches it would see every "
                               "queue, consumer and dead letter; keep it on loopback (put a "
                               "proxy with logins in front), or give {insecure} to serve it "
                               "open")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def describe(self) -> str:
        return (f"sync={self.sync} lease_s={self.lease_s:g} retention_s={self.retention_s:g} "
                f"heartbeat_s={self.heartbeat_s:g}x{self.heartbeat_misses} "
                f"grace_s={self.grace_s:g} "
                f"max_frame_bytes={self.max_frame_bytes}"
                f" auth={'users file' if self.users_file else 'none'}"
                f" tls={'client certificates' if self.tls_ca else 'on' if self.tls else 'off'}")


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine reaches (a name other than localhost is
    not trusted to be: it may resolve to anything)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
