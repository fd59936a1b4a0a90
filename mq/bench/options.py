"""Every knob of a bench run and its default, in one frozen value; `mq bench` flags map onto it."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from mq_client.url import parse_url

from mq.bench.placement import MAX_QUEUES, SUFFIX_CHARS
from mq.limits import MAX_GET_BATCH, MAX_NAME_CHARS, MAX_PREFETCH, MAX_PUB_BATCH

SCENARIOS = ("publish", "consume", "e2e")
SYNC_MODES = ("full", "normal")
ACK_MODES = ("batch", "each")
CONSUME_MODES = ("sub", "get")
STAMP_BYTES = 8  # e2e bodies start with the publish time, time.time_ns() as 8 bytes big-endian
MAX_IDLE_CONNECTIONS = 10_000
MAX_WARM = 100_000_000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_QUEUE_NAME = re.compile(rf"[A-Za-z0-9_\-.:]{{1,{MAX_NAME_CHARS}}}")


def _loopback(url: str) -> bool:
    try:
        return parse_url(url).host in LOOPBACK_HOSTS
    except ValueError:
        return True  # the URL itself is reported by whoever connects with it


def _fresh_queue() -> str:
    # A queue of its own per run: leftovers of earlier runs on a shared broker never count.
    return f"bench-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """One bench run.

    Counts are messages, sizes bytes, rates messages per second, times seconds.
    `batch` is the messages per `mpub` (or, with keys, the `pub` requests in flight) of each
    producer; 1 means one at a time: send, wait for the confirmation, send the next.
    `inflight` is how many `mpub` requests each producer keeps in flight when batch > 1.
    `consume` is how consumers receive: "sub" (the broker pushes up to `prefetch` unacked
    messages; the default, since publish -> deliver then leaves out the consumer's own round
    trips) or "get" (one `get` of up to `prefetch` messages at a time).
    `ack` is how consumers ack what they received at once: "batch" (one batch `ack` request) or
    "each" (one `ack` request per message, all in flight at once).
    `idle_connections` plain connections are opened (one `ping` each, then silent) before the
    measured run and held until its end, to see what idle connections cost the broker.
    `warm` messages are passed through the queue (published, leased and acked in batches)
    before the measured run, so that it measures a queue with a past: the broker's cost per
    request must not grow with how many messages a queue has seen.
    `rate` switches producers to open loop: sends happen at fixed times, and latencies are
    measured from those scheduled times, so a slow broker cannot hide its delays.
    `queues` > 1 spreads the run over that many queues named `<queue>-<j>`, on distinct slots
    spread over the brokers of a cluster (placement.py), and reports each broker's figures.
    `broker_pid` is the pid of the one broker under test; `broker_pids` those of several
    (a cluster's), each matched to its broker by the port it listens on.
    """

    scenario: str = "e2e"
    producers: int = 1
    consumers: int = 1
    size: int = 100
    count: int = 100_000
    duration_s: float | None = None
    batch: int = 100
    inflight: int = 2
    prefetch: int = 100
    consume: str = "sub"
    ack: str = "batch"
    keys: int = 0
    sync: str = "full"
    idle_connections: int = 0
    warm: int = 0
    rate: float | None = None
    queue: str = field(default_factory=_fresh_queue)
    queues: int = 1
    url: str | None = None
    broker_pid: int | None = None
    broker_pids: tuple[int, ...] = ()
    json_path: str | None = None
    timeout_s: float = 300.0
    floor: bool = False
    floor_duration_s: float = 2.0
    data_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        problems = [message for ok, message in self._checks() if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.scenario in SCENARIOS, f"scenario must be one of {', '.join(SCENARIOS)}"),
            (self.sync in SYNC_MODES, f"sync must be one of {', '.join(SYNC_MODES)}"),
            (self.producers >= 1, "producers must be at least 1"),
            (self.consumers >= 1, "consumers must be at least 1"),
            (self.size >= 0, "size must be at least 0 bytes"),
            (self.scenario != "e2e" or self.size >= STAMP_BYTES,
             f"e2e needs --size >= {STAMP_BYTES}: the body carries the publish time"),
            (self.count >= 1, "count must be at least 1"),
            (self.duration_s is None or self.duration_s > 0, "duration must be above 0 seconds"),
            (1 <= self.batch <= MAX_PUB_BATCH, f"batch must be 1..{MAX_PUB_BATCH}"),
            (self.inflight >= 1, "inflight must be at least 1"),
            (self.consume in CONSUME_MODES, f"consume must be one of {', '.join(CONSUME_MODES)}"),
            (1 <= self.prefetch <= self.max_prefetch,
             f"prefetch must be 1..{self.max_prefetch} with --consume {self.consume}"),
            (self.ack in ACK_MODES, f"ack must be one of {', '.join(ACK_MODES)}"),
            (0 <= self.idle_connections <= MAX_IDLE_CONNECTIONS,
             f"idle connections must be 0..{MAX_IDLE_CONNECTIONS}"),
            (self.idle_connections == 0 or self.url is None or _loopback(self.url),
             "--idle-connections needs a broker on 127.0.0.1"),
            (self.idle_connections == 0 or self.url is None or "," not in self.url,
             "--idle-connections needs one broker's URL, not a seed list"),
            (self.keys >= 0, "keys must be at least 0"),
            (0 <= self.warm <= MAX_WARM, f"warm must be 0..{MAX_WARM:,}"),
            (self.rate is None or self.rate > 0, "rate must be above 0 msgs/s"),
            (self.scenario != "consume" or self.rate is None, "--rate applies to producers; "
             "the consume scenario has none"),
            (bool(_QUEUE_NAME.fullmatch(self.queue)),
             f"queue must be 1..{MAX_NAME_CHARS} of A-Z a-z 0-9 _-.:"),
            (1 <= self.queues <= MAX_QUEUES, f"queues must be 1..{MAX_QUEUES:,}"),
            (self.queues == 1 or len(self.queue) + SUFFIX_CHARS <= MAX_NAME_CHARS,
             f"with --queues the queue name may have at most {MAX_NAME_CHARS - SUFFIX_CHARS} "
             "chars"),
            (self.broker_pid is None or not self.broker_pids, "give one broker pid or a list"),
            (self.timeout_s > 0, "timeout must be above 0 seconds"),
            (self.floor_duration_s > 0, "floor duration must be above 0 seconds"),
        ]

    @property
    def max_prefetch(self) -> int:
        """The protocol's bound on prefetch for this way of consuming."""
        return MAX_PREFETCH if self.consume == "sub" else MAX_GET_BATCH

    @property
    def has_producers(self) -> bool:
        return self.scenario in ("publish", "e2e")

    @property
    def has_consumers(self) -> bool:
        return self.scenario in ("consume", "e2e")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
