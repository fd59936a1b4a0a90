"""Every setting of a broker and its default, in one frozen value. `mq serve` flags map onto it."""

from __future__ import annotations

from dataclasses import dataclass

from mq.limits import (
    DEFAULT_PREFETCH,
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

DEFAULT_PORT = 7711


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db_path: str = "data/mq.db"
    sync: str = "full"  # "full": fsync each commit; "normal": survives a killed process only
    max_frame_bytes: int = 8 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024
    lease_s: float = 30.0  # default visibility timeout of a queue
    retention_s: float = 4 * 86_400.0  # default retention of a queue
    heartbeat_s: float = 1.0  # default heartbeat interval of a consumer session
    heartbeat_misses: int = 3  # missed intervals before a session is dead
    grace_s: float = 3.0  # how long a session whose connection dropped waits for a reconnect
    poison_deaths: int = 3  # consumers dying with a message before it is set aside as poison
    default_prefetch: int = DEFAULT_PREFETCH  # unacked messages a group member may hold
    ring_vnodes: int = 512  # points per member on a group's hash ring
    keep_history_s: float = 60.0  # acked/removed messages stay in the log this long (HISTORY)
    # Bounds on what one client can make the broker hold (protocol.md section 7).
    write_buffer_high_bytes: int = 4 * 1024 * 1024  # replies not yet read: no more executed
    max_backlog_commands: int = 10_000  # read but not yet executed, before reading pauses
    max_unconfirmed_replies: int = 10_000  # replies waiting for a commit, before reading pauses
    max_waiting_gets: int = 1_000  # long-poll GETs one connection may have waiting at once
    max_log_reads: int = 16  # HISTORY reads one connection may have running at once
    max_buffered_input_bytes: int = 256 * 1024 * 1024  # unfinished frames of all clients
    max_commit_changes: int = 20_000  # changes per group commit (one round may exceed it)
    # Bodies of queued messages kept in memory, in all; beyond, bodies stay in the log and are
    # read back when delivered (plain messages only: no key, priority, delay, TTL, dedup id).
    max_body_memory_bytes: int = 0  # 0: no limit
    shutdown_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}")
        if not 1024 <= self.max_frame_bytes <= MAX_FRAME_BYTES_CEILING:
            raise ValueError(f"max_frame_bytes must be 1 KiB .. {MAX_FRAME_BYTES_CEILING} bytes")
        if self.max_line_bytes < 64:
            raise ValueError("max_line_bytes must be at least 64")
        if not MIN_LEASE_S <= self.lease_s <= MAX_LEASE_S:
            raise ValueError(f"lease_s must be {MIN_LEASE_S} .. {MAX_LEASE_S} seconds")
        if not MIN_RETENTION_S <= self.retention_s <= MAX_RETENTION_S:
            raise ValueError(f"retention_s must be {MIN_RETENTION_S} .. {MAX_RETENTION_S} seconds")
        if not MIN_HEARTBEAT_S <= self.heartbeat_s <= MAX_HEARTBEAT_S:
            raise ValueError(f"heartbeat_s must be {MIN_HEARTBEAT_S} .. {MAX_HEARTBEAT_S} seconds")
        if self.heartbeat_misses < 1 or self.poison_deaths < 1 or self.ring_vnodes < 1:
            raise ValueError("heartbeat_misses, poison_deaths and ring_vnodes must be at least 1")
        if self.grace_s < 0 or self.keep_history_s < 0:
            raise ValueError("grace_s and keep_history_s must be >= 0")
        if not 1 <= self.default_prefetch <= MAX_PREFETCH:
            raise ValueError(f"default_prefetch must be 1 .. {MAX_PREFETCH}")
        bounds = (self.write_buffer_high_bytes, self.max_backlog_commands,
                  self.max_unconfirmed_replies, self.max_waiting_gets, self.max_log_reads,
                  self.max_commit_changes)
        if min(bounds) < 1 or self.max_buffered_input_bytes < self.max_frame_bytes:
            raise ValueError("every bound must be at least 1, and max_buffered_input_bytes at "
                             "least max_frame_bytes")
        if self.max_body_memory_bytes < 0:
            raise ValueError("max_body_memory_bytes must be >= 0 (0: no limit)")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535 (0 picks a free port)")

    def describe(self) -> str:
        return (f"sync={self.sync} lease_s={self.lease_s:g} retention_s={self.retention_s:g} "
                f"heartbeat_s={self.heartbeat_s:g}x{self.heartbeat_misses} "
                f"grace_s={self.grace_s:g} "
                f"max_frame_bytes={self.max_frame_bytes}")
