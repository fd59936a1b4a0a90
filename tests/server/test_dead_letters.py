"""Dead letters against a real broker: a message that used up its queue's max_deliveries moves
to the dead-letter queue with its reason, where PEEK shows it without leasing it and REDRIVE
sends it back to count afresh; through text mode and through the SDK."""

from __future__ import annotations

import time

from mq_client import AsyncClient

from tests.harness import BrokerProcess, TextSession, run_with_client


def test_dead_letters_peek_redrive_explain_history(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("DECLARE jobs max_deliveries=2").endswith(
        "dead_letter=jobs.dlq dedup_window_s=300")
    assert t.ask("PUB jobs resize cat.png") == "+OK 1"
    assert t.ask("GET jobs") == "MSG 1.1 jobs 1 resize cat.png"
    assert t.ask("NACK 1.1 0 PIL error: truncated file") == "+OK"
    assert t.ask("GET jobs") == "MSG 1.2 jobs 2 resize cat.png"
    assert t.ask("NACK 1.2 0 still truncated") == "+OK"
    assert t.ask("GET jobs") == "+EMPTY"
    t.send("PEEK jobs.dlq")
    peeked = t.reply()
    assert peeked[-1] == "+OK 1 messages"
    assert "dead_from=jobs" in peeked[0] and "last_error='still truncated'" in peeked[0]
    t.send("EXPLAIN 1")
    explained = t.reply()
    assert explained[-1].startswith("+OK dead-lettered from jobs: delivered 2 times")
    t.send("HISTORY 1")
    history = t.reply()
    assert history[-1] == "+OK 6 events"
    events = [line.split(" ", 1)[1] for line in history[:-1]]
    assert events[0].startswith("published queue=jobs")
    assert events[1].startswith("leased delivery=1 holder=c")
    assert events[2] == "nacked error='PIL error: truncated file'" or events[2].startswith(
        "nacked error=")
    assert events[5].startswith("dead-lettered queue=jobs.dlq")
    assert t.ask("REDRIVE jobs.dlq") == "+OK redriven 1 messages"
    assert t.ask("GET jobs") == "MSG 1.3 jobs 3 resize cat.png"
    assert t.ask("EXPLAIN 99").startswith("+OK message 99 is not in any queue")


def test_dead_letter_after_max_deliveries_then_peek_and_redrive(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        settings = await mq.declare("render", max_deliveries=2, lease_s=10)
        assert (settings["max_deliveries"], settings["dead_letter"]) == (2, "render.dlq")
        msg_id = await mq.publish("render", b"frame 42", key="film-1")
        for attempt in (1, 2):
            (msg,) = await mq.get("render")
            assert msg.deliveries == attempt
            await mq.nack(msg, error=f"GPU error #{attempt}")
        assert await mq.get("render") == []
        (dead,) = await mq.peek("render.dlq")
        assert (dead.msg_id, dead.body, dead.key) == (msg_id, b"frame 42", "film-1")
        assert dead.deliveries == 2
        assert dead.dead and dead.dead_from == "render" and dead.last_error == "GPU error #2"
        assert dead.dead_reason is not None and "max_deliveries=2" in dead.dead_reason
        assert dead.dead_at is not None and dead.dead_at <= time.time()
        assert await mq.peek("render.dlq") == [dead]  # peek leases nothing
        assert await mq.redrive("render.dlq") == 1
        assert await mq.peek("render.dlq") == []
        (back,) = await mq.get("render")
        assert back.msg_id == msg_id
        await mq.nack(back)  # counts afresh towards max_deliveries: one nack is not enough
        assert [m.msg_id for m in await mq.get("render")] == [msg_id]

    run_with_client(broker.url, scenario)
