"""Message headers against a real broker, in both modes: given at publish (pub, mpub per
message, fanout), returned with every delivery (GET, SUB pushes, PEEK), kept through dead
letters and redrives, shown by HISTORY, EXPLAIN and MONITOR, refused past their limits."""

from __future__ import annotations

import pytest
from mq_client import JSON, AsyncClient, Client
from mq_client.errors import BadRequest

from tests.harness import BinarySession, BrokerProcess, TextSession, run_with_client

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def test_text_mode_reads_headers_and_shows_them_where_the_message_is_shown(
        broker: BrokerProcess) -> None:
    watcher, t = TextSession(broker.port), TextSession(broker.port)
    watcher.ask("MONITOR q")
    assert t.ask("PUB q h.content-type=text/plain h.note='two words' margherita") == "+OK 1"
    assert t.ask("PUB q plain") == "+OK 2"
    shown = "h.content-type=text/plain h.note='two words'"
    assert watcher.read_line().endswith(f"published size=10 {shown}")
    t.send("PEEK q")
    assert t.reply() == [f"#1 deliveries=0 priority=0 {shown} body=margherita",
                         "#2 deliveries=0 priority=0 body=plain", "+OK 2 messages"]
    assert t.ask("GET q") == f"MSG 1.1 q 1 {shown} -- margherita"
    assert t.ask("GET q") == "MSG 2.1 q 1 plain"
    t.send("EXPLAIN 1")
    assert f"headers: {shown}" in t.reply()
    t.send("HISTORY 1")
    assert t.reply()[0].endswith(f"published queue=q size=10 {shown}")


def test_text_mode_refuses_headers_past_their_limits(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("PUB q h.v=" + "x" * 2_049 + " body") == (
        "-ERR BAD_REQUEST header 'v' is 2049 bytes: a header value has at most 2048 bytes")
    many = " ".join(f"h.n{i}=" for i in range(33))
    assert t.ask(f"PUB q {many} body") == (
        "-ERR BAD_REQUEST a message has at most 32 headers, got 33")
    assert t.ask("PUB q h.a/b=1 body").startswith("-ERR BAD_REQUEST header name 'a/b' is invalid")
    assert t.ask("PUB q h.v=" + "x" * 2_048 + " body") == "+OK 1"


def test_binary_deliveries_carry_headers_only_when_there_are_some(broker: BrokerProcess) -> None:
    b = BinarySession(broker.port)
    assert b.call("pub", queue="q", body=b"{}", headers={"content-type": "application/json"})["ok"]
    assert b.call("mpub", queue="q", bodies=[b"a", b"b"], headers=[TRACE, None])["ok"]
    msgs = b.call("get", queue="q", max=10)["msgs"]
    assert [m.get("headers") for m in msgs] == [{"content-type": "application/json"}, TRACE, None]
    assert "headers" not in msgs[2]  # not even a nil: a message without costs no byte more
    too_many = b.call("pub", queue="q", body=b"x", headers={f"n{i}": "" for i in range(33)})
    assert (too_many["ok"], too_many["code"]) == (False, "BAD_REQUEST")
    wrong = b.call("mpub", queue="q", bodies=[b"a", b"b"], headers=[TRACE])
    assert wrong["message"] == "headers must hold one map (or nil) per body: 2 bodies, 1 headers"


def test_sdk_headers_through_sub_fanout_dead_letters_and_redrive(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        await mq.declare("jobs", max_deliveries=1)
        await mq.bind("jobs-topic", "jobs")
        await mq.bind("jobs-topic", "audit")
        copies = await mq.fanout("jobs-topic", JSON.encode({"job": 7}), headers=TRACE)
        sub = await mq.subscribe("jobs")
        pushed = await anext(sub)
        assert pushed.msg_id == copies["jobs"] and pushed.decode(JSON) == {"job": 7}
        assert pushed.headers == {"content-type": "application/json", **TRACE}
        await mq.nack(pushed, error="boom")  # its one delivery: dead-lettered
        await sub.close()
        [dead] = await mq.peek("jobs.dlq")
        assert (dead.dead_from, dead.headers) == ("jobs", pushed.headers)
        assert await mq.redrive("jobs.dlq") == 1
        [back] = await mq.get("jobs")
        assert (back.msg_id, back.headers) == (pushed.msg_id, pushed.headers)
        [audit] = await mq.get("audit")
        assert audit.headers == pushed.headers and audit.body == pushed.body
        [published] = [e for e in await mq.history(back.msg_id) if e["event"] == "published"]
        assert published["headers"] == pushed.headers

    run_with_client(broker.url, scenario)


def test_the_blocking_client_publishes_and_reads_headers(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq:
        ids = mq.publish_many("q", [b"a", JSON.encode([1])], headers=[{"x-id": "a"}, None])
        mq.publish("q", b"c", headers={"x-id": "c"})
        msgs = mq.get("q", max=10)
        assert [m.msg_id for m in msgs][:2] == ids
        assert [dict(m.headers) for m in msgs] == [
            {"x-id": "a"}, {"content-type": "application/json"}, {"x-id": "c"}]
        with pytest.raises(BadRequest, match="header name 'bad name' is invalid"):
            mq.publish("q", b"x", headers={"bad name": "v"})
