"""/metrics: the broker's figures in the Prometheus text format, read at scrape time.

The counts the broker keeps anyway are read on its loop into a `Figures` value (a copy of a
few numbers per queue); a custom collector turns that value into metric families, and
prometheus-client writes the text. Nothing is counted per message for it, and a scrape costs
the same however many messages went through. Writing the text costs tens of microseconds per
sample (a broker with 100 queues has about 1,600), so it runs in a worker thread on the copy,
never on the broker's loop. Names follow Prometheus conventions: `mq_` prefix,
base units (seconds, bytes), `_total` for counters, one label per queue.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from mq.http.view import BrokerView, Figures, Histogram

QUEUE_STATES = ("ready", "delayed", "leased")  # mq_queue_messages{state=...}
QUEUE_COUNTERS = {  # key of a queue's figures -> (metric name without _total, help)
    "published": ("mq_messages_published", "Messages published to the queue."),
    "acked": ("mq_messages_acked", "Messages acked."),
    "nacked": ("mq_messages_nacked", "Leases given back with a nack."),
    "redelivered": ("mq_messages_redelivered", "Leases of messages that had been leased before."),
    "expired": ("mq_leases_expired", "Leases whose deadline passed; the message went back."),
    "released": ("mq_leases_released", "Leases given back because their consumer died."),
    "dead_lettered": ("mq_messages_dead_lettered", "Messages moved to the dead-letter queue."),
    "poisoned": ("mq_messages_poisoned",
                 "Messages moved to the dead-letter queue because their consumers kept dying."),
    "ttl_expired": ("mq_messages_ttl_expired", "Messages removed because their TTL passed."),
    "dropped": ("mq_messages_retention_dropped", "Messages removed by the queue's retention."),
    "deduplicated": ("mq_publishes_deduplicated",
                     "Publishes answered with an earlier message's id."),
}
SERVER_GAUGES = {  # key of the server's STATS figures -> (metric name, help)
    "uptime_s": ("mq_uptime_seconds", "Seconds since the broker started."),
    "connections": ("mq_connections", "Client connections open now."),
    "sessions": ("mq_sessions", "Consumer sessions alive now."),
    "subscriptions": ("mq_subscriptions", "Subscriptions open now."),
    "waiting_gets": ("mq_waiting_gets", "Long-poll GETs waiting now."),
    "buffered_input_bytes": ("mq_buffered_input_bytes",
                             "Bytes of unfinished requests held for all clients."),
    "compaction_backlog": ("mq_compaction_backlog_messages",
                           "Finished messages not yet deleted from the log."),
    "auth_checks_running": ("mq_auth_checks_running", "AUTH secrets being checked now."),
}
SERVER_COUNTERS = {
    "commits": ("mq_commits", "Transactions written to the log."),
    "committed_changes": ("mq_committed_changes", "State changes written to the log."),
    "failed_writes": ("mq_commit_failures", "Commits that failed (and were retried)."),
    "monitor_events_dropped": ("mq_monitor_events_dropped",
                               "MONITOR events not sent to a client that did not read."),
    "auth_accepted": ("mq_auth_accepted", "AUTHs that succeeded."),
    "auth_refused": ("mq_auth_refused", "AUTHs refused for a wrong user or secret."),
}
TRAFFIC_COUNTERS = {
    "opened": ("mq_connections_opened", "Client connections accepted."),
    "bytes_in": ("mq_received_bytes", "Bytes read from clients."),
    "bytes_out": ("mq_sent_bytes", "Bytes written to clients."),
}


class BrokerCollector(Collector):
    def __init__(self, figures: Figures, writable: bool) -> None:
        """`writable`: the log is open and commits succeed."""
        self.figures = figures
        self.writable = writable

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        yield from _queue_metrics(f)
        yield from _group_metrics(f)
        yield from _server_metrics(f)
        writable = GaugeMetricFamily("mq_store_writable",
                                     "1 when the log is open and commits succeed, else 0.")
        writable.add_metric([], 1.0 if self.writable else 0.0)
        yield writable
        yield _histogram("mq_commit_duration_seconds", "Time to write one commit.",
                         f.commit_seconds)
        yield _histogram("mq_commit_changes", "State changes per commit.", f.commit_changes)


def _queue_metrics(f: Figures) -> Iterator[Metric]:
    names = sorted(f.queues)
    depth = GaugeMetricFamily("mq_queue_messages", "Messages in the queue now, by state.",
                              labels=["queue", "state"])
    oldest = GaugeMetricFamily("mq_queue_oldest_ready_age_seconds",
                               "Age of the oldest ready message; 0 when none is ready.",
                               labels=["queue"])
    for name in names:
        q = f.queues[name]
        for state in QUEUE_STATES:
            depth.add_metric([name, state], q[state])
        oldest.add_metric([name], q["oldest_ready_s"])
    yield depth
    yield oldest
    for key, (metric, doc) in QUEUE_COUNTERS.items():
        family = CounterMetricFamily(metric, doc, labels=["queue"])
        for name in names:
            family.add_metric([name], f.queues[name][key])
        yield family


def _group_metrics(f: Figures) -> Iterator[Metric]:
    members = GaugeMetricFamily("mq_group_members", "Consumers in the queue's group.",
                                labels=["queue", "group"])
    share = GaugeMetricFamily("mq_group_ring_share",
                              "Fraction of the group's hash ring a consumer owns.",
                              labels=["queue", "group", "consumer"])
    leases = GaugeMetricFamily("mq_group_member_leases", "Leases a group member holds now.",
                               labels=["queue", "group", "consumer"])
    counts: dict[tuple[str, str], int] = {}
    for m in f.members:
        counts[m.queue, m.group] = counts.get((m.queue, m.group), 0) + 1
        share.add_metric([m.queue, m.group, m.consumer], m.ring_share)
        leases.add_metric([m.queue, m.group, m.consumer], m.leases)
    for (queue, group), count in sorted(counts.items()):
        members.add_metric([queue, group], count)
    yield from (members, share, leases)


def _server_metrics(f: Figures) -> Iterator[Metric]:
    info = GaugeMetricFamily("mq_build_info", "The broker's version.", labels=["version"])
    info.add_metric([str(f.server["version"])], 1.0)
    yield info
    for key, (metric, doc) in SERVER_GAUGES.items():
        yield GaugeMetricFamily(metric, doc, value=f.server[key])
    for key, (metric, doc) in SERVER_COUNTERS.items():
        yield CounterMetricFamily(metric, doc, value=f.server[key])
    for key, (metric, doc) in TRAFFIC_COUNTERS.items():
        yield CounterMetricFamily(metric, doc, value=f.traffic[key])
    yield _labelled("mq_consumer_deaths", "Consumer sessions that died, by cause.", "cause",
                    f.deaths)
    yield _labelled("mq_errors", "Error replies sent to clients, by code.", "code", f.errors)
    yield CounterMetricFamily("mq_compacted_messages", "Finished messages deleted from the log.",
                              value=f.compacted)
    yield GaugeMetricFamily("mq_log_size_bytes", "Size of the log on disk (database and WAL).",
                            value=f.log_bytes)


def _labelled(name: str, doc: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _histogram(name: str, doc: str, h: Histogram) -> Metric:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(h.bounds, h.counts, strict=False):
        running += count
        buckets.append((f"{bound:g}", running))
    buckets.append(("+Inf", running + h.counts[-1]))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


def read(view: BrokerView) -> BrokerCollector:
    """What one scrape shows, read from the broker now (on its loop)."""
    return BrokerCollector(view.figures(), view.not_ready() is None)


def render(broker: BrokerCollector, accept: str) -> tuple[bytes, str]:
    """The metrics of `broker` and the process's own (RSS, CPU seconds, open files, start
    time: process_* in the Prometheus convention), with their content type, in the format the
    scraper's Accept header asks for (Prometheus text unless it asks for OpenMetrics). Touches
    nothing of the broker: safe in another thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(broker)
    ProcessCollector(registry=registry)
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
