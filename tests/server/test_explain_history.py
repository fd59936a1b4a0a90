"""EXPLAIN (why a message is or is not being delivered) and HISTORY (its life from the log)
against a real broker, through the SDK."""

from __future__ import annotations

import time
from pathlib import Path

from mq_client import AsyncClient

from tests.harness import BrokerProcess, TextSession, run_with_client, wait_until
from tests.inprocess import broker_on_fake_time


def test_explain_a_leased_message_names_its_holder(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        async with AsyncClient.connect(broker.url) as worker:
            await worker.hello("oven-7", heartbeat_s=1)
            msg_id = await mq.publish("pizzas", b"margherita")
            assert (await mq.explain(msg_id))["state"] == "ready"
            (msg,) = await worker.get("pizzas", lease_s=20)
            why = await mq.explain(msg_id)
            assert why["state"] == "leased" and "oven-7" in why["holder"]
            assert why["holder"] in why["why"] and "heartbeat" in why["why"]
            assert why["lease_deadline"] > time.time() + 15
            await worker.ack(msg)
        assert (await mq.explain(msg_id))["state"] == "gone"

    run_with_client(broker.url, scenario)


def test_history_lists_published_leased_nacked(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        msg_id = await mq.publish("log", b"x", key="k", priority=4)
        (msg,) = await mq.get("log")
        await mq.nack(msg, error="try again")
        await mq.get("log")
        events = await mq.history(msg_id)
        assert [e["event"] for e in events] == ["published", "leased", "nacked", "leased"]
        assert (events[0]["queue"], events[0]["key"], events[0]["priority"]) == ("log", "k", 4)
        assert [e["delivery"] for e in events if e["event"] == "leased"] == [1, 2]
        assert events[2]["error"] == "try again"
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)

    run_with_client(broker.url, scenario)


def test_history_of_an_acked_message_outlives_compaction_for_keep_history_s(
        tmp_path: Path) -> None:
    with broker_on_fake_time(tmp_path / "mq.db", keep_history_s=60.0) as broker:
        t = TextSession(broker.port)
        assert t.ask("PUB log x") == "+OK 1"
        assert t.ask("GET log").startswith("MSG 1.1 ")
        assert t.ask("ACK 1.1") == "+OK"

        def history() -> list[str]:
            t.send("HISTORY 1")
            return [line.split()[1] for line in t.reply()[:-1]]

        broker.advance(59.0)
        assert t.ask("PUB other y") == "+OK 2"  # a commit, after which compaction may run
        assert history() == ["published", "leased", "acked"]
        broker.advance(2.0)
        assert t.ask("PUB other z") == "+OK 3"
        wait_until(lambda: history() == [], "HISTORY 1 is compacted once keep_history_s passed")
