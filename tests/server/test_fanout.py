"""Fan-out against a real broker: BIND a topic to queues, FANOUT one body to a copy in each,
each copy acked on its own; UNBIND; through text mode and through the SDK."""

from __future__ import annotations

from mq_client import AsyncClient

from tests.harness import BrokerProcess, TextSession, run_with_client


def test_fanout_to_bound_queues(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("FANOUT uploads video-1").startswith("+OK 0 copies")
    for q in ("p144", "p720", "captions"):
        assert t.ask(f"BIND uploads {q}").startswith("+OK changed")
    t.send("BINDINGS")
    assert t.reply() == ["uploads -> captions, p144, p720", "+OK 1 topics"]
    assert t.ask("FANOUT uploads key=v7 video-7") == "+OK 3 copies: captions=1 p144=2 p720=3"
    assert t.ask("GET p720") == "MSG 3.1 p720 1 video-7"
    assert t.ask("ACK 3.1") == "+OK"
    assert t.ask("GET p144") == "MSG 2.1 p144 1 video-7"  # acked on its own
    assert t.ask("UNBIND uploads p720").startswith("+OK changed")


def test_fanout_to_three_bound_queues_acked_independently(broker: BrokerProcess) -> None:
    async def scenario(mq: AsyncClient) -> None:
        queues = ["v-144p", "v-720p", "v-captions"]
        for q in queues:
            assert await mq.bind("uploads", q) is True
        assert await mq.bind("uploads", "v-720p") is False
        assert await mq.bindings() == {"uploads": sorted(queues)}
        ids = await mq.fanout("uploads", b"cat.mp4", key="user-9", priority=3)
        assert sorted(ids) == sorted(queues) and len(set(ids.values())) == 3
        copies = {q: (await mq.get(q))[0] for q in queues}
        assert {q: (m.msg_id, m.body, m.key, m.priority) for q, m in copies.items()} == {
            q: (ids[q], b"cat.mp4", "user-9", 3) for q in queues}
        await mq.ack(copies["v-144p"])
        await mq.nack(copies["v-720p"])
        stats = (await mq.stats())["queues"]
        assert [(stats[q]["acked"], stats[q]["ready"], stats[q]["leased"]) for q in queues] == [
            (1, 0, 0), (0, 1, 0), (0, 0, 1)]
        assert await mq.unbind("uploads", "v-captions") is True
        assert await mq.unbind("uploads", "v-captions") is False
        assert sorted(await mq.fanout("uploads", b"dog.mp4")) == ["v-144p", "v-720p"]
        assert await mq.fanout("nobody-listens", b"x") == {}

    run_with_client(broker.url, scenario)
