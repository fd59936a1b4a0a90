"""`mq bench --url <seed list> --queues N` against a real 3-broker cluster: the queues fall on
every broker, every message is delivered once across them, and each broker's row (its node,
its messages, its CPU by pid) adds up to the run. Small counts: it checks, it does not measure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mq.cli import main
from tests.cluster.brokers import Cluster

COUNT = 1_200


@pytest.mark.timeout(240)
def test_bench_over_a_seed_list_spreads_its_queues_over_every_broker(
        settled_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One consumer takes all six queues: two subscriptions per broker, made at once on one
    # client, which must share one link per broker (its acks go where its leases are).
    out = tmp_path / "report.json"
    pids = ",".join(str(b.pid) for b in settled_cluster.brokers.values())
    code = main(["bench", "--no-progress", "--timeout", "120", "--json", str(out),
                 "--url", settled_cluster.seeds, "--broker-pid", pids, "--queues", "6",
                 "--producers", "2", "--consumers", "1", "--count", str(COUNT),
                 "--batch", "20", "--prefetch", "50"])
    r = json.loads(out.read_text())
    assert code == 0, r["errors"]
    c = r["counts"]
    assert c["confirmed"] == c["received"] == c["unique"] == c["acked"] == COUNT
    assert c["errors"] == c["duplicates"] == 0
    rows = {row["node"]: row for row in r["brokers"]}
    assert sorted(rows) == ["b1", "b2", "b3"]
    by_addr = {b.addr: b for b in settled_cluster.brokers.values()}
    for node, row in rows.items():
        assert row["queues"] == 2, row  # 6 queues, 2 on each broker
        assert row["pid"] == by_addr[row["addr"]].pid and by_addr[row["addr"]].node == node
        assert row["published"] == row["acked"] == row["messages"] > 0, row
        assert row["cpu_s"] is not None and row["cpu_us_per_msg"] > 0
    assert sum(row["published"] for row in rows.values()) == COUNT
    assert "over 3 brokers" in capsys.readouterr().out
