"""The HTTP side port of a real broker, over real loopback sockets: /metrics against work the
test did, the probes, the dashboard's JSON, and bad HTTP that gets a 4xx and never hurts the
broker's own port. The broker runs on fake time (tests/inprocess.py); the HTTP bounds on time
run on the loop's clock, kept short here."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mq.server.config import Config
from tests.harness import TextSession, wait_until
from tests.inprocess import InProcessBroker, broker_on_fake_time

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
MAX_REQUEST_BYTES = 1024


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[InProcessBroker]:
    with broker_on_fake_time(tmp_path / "mq.db", http_port=0,
                             http_max_request_bytes=MAX_REQUEST_BYTES, http_max_headers=8,
                             http_timeout_s=5.0) as b:
        yield b


def http_port(broker: InProcessBroker) -> int:
    assert broker.server.http is not None and broker.server.http.port is not None
    return broker.server.http.port


def get(broker: InProcessBroker, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", http_port(broker), timeout=10)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type", ""), reply.read()
    finally:
        conn.close()


def get_json(broker: InProcessBroker, path: str) -> tuple[int, Any]:
    status, kind, body = get(broker, path)
    assert kind == "application/json"
    return status, json.loads(body)


def raw(broker: InProcessBroker, data: bytes) -> bytes:
    """Send `data` as it is and read until the broker closes."""
    with socket.create_connection(("127.0.0.1", http_port(broker)), timeout=10) as s:
        s.sendall(data)
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def scrape(broker: InProcessBroker) -> Samples:
    status, kind, body = get(broker, "/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def test_metrics_count_the_work_done(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    for i in range(5):
        assert t.ask(f"PUB jobs job-{i}").startswith("+OK ")
    receipts = [t.ask("GET jobs").split()[1] for _ in range(3)]
    for receipt in receipts[:2]:
        assert t.ask(f"ACK {receipt}") == "+OK"
    assert t.ask(f"NACK {receipts[2]}") == "+OK"
    assert t.ask("GET jobs").startswith("MSG ")  # the nacked one again: a redelivery
    assert t.ask("ACK 999.1").startswith("-ERR LEASE_LOST ")
    m = scrape(broker)
    jobs = {"queue": "jobs"}
    assert value(m, "mq_messages_published_total", **jobs) == 5
    assert value(m, "mq_messages_acked_total", **jobs) == 2
    assert value(m, "mq_messages_nacked_total", **jobs) == 1
    assert value(m, "mq_messages_redelivered_total", **jobs) == 1
    assert value(m, "mq_queue_messages", state="ready", **jobs) == 2
    assert value(m, "mq_queue_messages", state="leased", **jobs) == 1
    assert value(m, "mq_queue_messages", state="delayed", **jobs) == 0
    assert value(m, "mq_errors_total", code="LEASE_LOST") == 1
    assert value(m, "mq_errors_total", code="BAD_REQUEST") == 0
    assert value(m, "mq_connections") == 1
    assert value(m, "mq_connections_opened_total") == 1
    assert value(m, "mq_received_bytes_total") > 5 * len("PUB jobs job-0\r\n")
    assert value(m, "mq_sent_bytes_total") > 0
    commits = value(m, "mq_commits_total")
    assert commits >= 1
    assert value(m, "mq_commit_duration_seconds_count") == commits
    assert value(m, "mq_commit_duration_seconds_bucket", le="+Inf") == commits
    assert value(m, "mq_commit_changes_sum") == value(m, "mq_committed_changes_total")
    assert value(m, "mq_store_writable") == 1
    assert value(m, "mq_log_size_bytes") > 0
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "mq_build_info", version=broker.server.figures()["version"]) == 1


def test_groups_sessions_and_deaths_by_cause(broker: InProcessBroker) -> None:
    silent, leaving = TextSession(broker.port), TextSession(broker.port)
    for t, name in ((silent, "w1"), (leaving, "w2")):
        assert t.ask(f"HELLO {name}").startswith("+OK session ")
        assert t.ask("JOIN jobs g").startswith("+OK joined jobs/g ")
    m = scrape(broker)
    assert value(m, "mq_sessions") == 2
    assert value(m, "mq_group_members", queue="jobs", group="g") == 2
    shares = [value(m, "mq_group_ring_share", queue="jobs", group="g", consumer=c)
              for c in ("w1", "w2")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    leaving.close()
    broker.wait_for_connections(1)
    broker.advance(10)  # w1 missed 3 heartbeats, w2's grace of 3 s ran out
    m = scrape(broker)
    assert value(m, "mq_consumer_deaths_total", cause="missed_heartbeats") == 1
    assert value(m, "mq_consumer_deaths_total", cause="grace_expired") == 1
    assert value(m, "mq_sessions") == 0


def test_probes(broker: InProcessBroker) -> None:
    assert get(broker, "/healthz")[::2] == (200, b"ok\n")
    assert get(broker, "/readyz")[::2] == (200, b"ready\n")


def test_the_overview_shows_queues_consumers_and_dead_letters(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    assert t.ask("HELLO worker").startswith("+OK session ")
    assert t.ask("DECLARE jobs max_deliveries=1").startswith("+OK jobs ")
    assert t.ask("PUB jobs pizza").startswith("+OK ")
    receipt = t.ask("GET jobs").split()[1]
    assert t.ask(f"NACK {receipt} 0 oven on fire") == "+OK"
    assert t.ask("PUB jobs pasta").startswith("+OK ")
    assert t.ask("GET jobs").startswith("MSG ")
    status, view = get_json(broker, "/api/overview")
    assert status == 200 and view["not_ready"] is None
    queues = {q["name"]: q for q in view["queues"]}
    assert (queues["jobs"]["leased"], queues["jobs"]["dead_lettered"]) == (1, 1)
    assert queues["jobs.dlq"]["ready"] == 1
    [consumer] = view["consumers"]
    assert (consumer["consumer"], consumer["leases"], consumer["connected"]) == ("worker", 1, True)
    assert consumer["last_heartbeat_s_ago"] == 0.0  # fake time: no time passed
    [dead] = view["dead_letters"]
    assert (dead["queue"], dead["dead_from"], dead["last_error"], dead["body"]) == (
        "jobs.dlq", "jobs", "oven on fire", "pizza")
    assert "max_deliveries=1" in dead["reason"]


def test_explain_checks_the_message_id(broker: InProcessBroker) -> None:
    t = TextSession(broker.port)
    msg_id = int(t.ask("PUB jobs pizza").split()[1])
    status, out = get_json(broker, f"/api/explain?id={msg_id}")
    assert status == 200 and (out["state"], out["queue"]) == ("ready", "jobs")
    assert out["why"].startswith("ready: 0 messages ahead")
    assert get_json(broker, "/api/explain?id=12345")[1]["state"] == "gone"
    for bad in ("", "abc", "0", "-1", "1.5", "9223372036854775808", "%D9%A1", "1" * 400):
        status, out = get_json(broker, f"/api/explain?id={bad}")
        assert status == 400 and "id" in out["error"], bad


def test_the_dashboard_and_its_files_are_served(broker: InProcessBroker) -> None:
    status, kind, page = get(broker, "/")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b'src="/static/dashboard.js"' in page and b"http" not in page.split(b"<body>")[0]
    for name, kind_start in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        status, kind, body = get(broker, f"/static/{name}")
        assert status == 200 and kind.startswith(kind_start) and body
    assert get(broker, "/static/../app.py")[0] == 404
    assert get(broker, "/metrics", method="HEAD")[::2] == (200, b"")


def test_bad_http_gets_a_4xx_and_the_broker_port_still_serves(broker: InProcessBroker) -> None:
    assert raw(broker, b"\x00\x01garbage\xff\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(broker, b"PUB jobs x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(broker, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert raw(broker, b"GET /nothing HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    nine = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(9)) + b"\r\n"
    assert raw(broker, nine).startswith(b"HTTP/1.1 431 ")
    huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert raw(broker, huge).startswith(b"HTTP/1.1 431 ")
    t = TextSession(broker.port)
    assert t.ask("PING") == "+PONG"
    assert t.ask("PUB jobs x").startswith("+OK ")
    assert get(broker, "/healthz")[0] == 200


def test_a_head_of_exactly_max_request_bytes_is_served_one_more_is_431(
        broker: InProcessBroker) -> None:
    def head_of(size: int) -> bytes:
        start, end = b"GET /healthz HTTP/1.1\r\nX-Pad: ", b"\r\n\r\n"
        return start + b"p" * (size - len(start) - len(end)) + end

    assert raw(broker, head_of(MAX_REQUEST_BYTES)).startswith(b"HTTP/1.1 200 ")
    assert raw(broker, head_of(MAX_REQUEST_BYTES + 1)).startswith(b"HTTP/1.1 431 ")


def test_a_slow_client_is_answered_408(tmp_path: Path) -> None:
    with (broker_on_fake_time(tmp_path / "mq.db", http_port=0, http_timeout_s=0.2) as broker,
          socket.create_connection(("127.0.0.1", http_port(broker)), timeout=10) as s):
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert read_all(s).startswith(b"HTTP/1.1 408 ")


def test_one_connection_above_the_bound_gets_503(tmp_path: Path) -> None:
    with broker_on_fake_time(tmp_path / "mq.db", http_port=0, http_max_connections=2) as broker:
        idle = [socket.create_connection(("127.0.0.1", http_port(broker)), timeout=10)
                for _ in range(2)]
        wait_until(lambda: broker.server.http is not None and len(broker.server.http._open) == 2,
                   "the broker holds both idle HTTP connections")
        with socket.create_connection(("127.0.0.1", http_port(broker)), timeout=10) as s:
            assert read_all(s).startswith(b"HTTP/1.1 503 ")
        idle.pop().close()
        wait_until(lambda: raw(broker, b"GET /healthz HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 200 "), "a connection is served once one of the two closed")
        idle.pop().close()


@pytest.mark.parametrize("setting", [
    {"http_port": 65536}, {"http_port": -1}, {"http_max_request_bytes": 63},
    {"http_max_headers": 0}, {"http_max_connections": 0}, {"http_timeout_s": 0.0},
    {"http_timeout_s": float("nan")},
])
def test_http_bounds_out_of_range_are_refused(setting: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="http_"):
        Config(**setting)


def test_the_http_port_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert Config().http_port is None
    with broker_on_fake_time(tmp_path / "mq.db") as broker:
        assert broker.server.http is None
