"""A binary client cannot forge reply lines in another user's text session: a key, a dedup id
and a nack error holding CR LF come out escaped in text PEEK, EXPLAIN, HISTORY and MONITOR
(protocol.md 3.1), each reply as many lines as it has, and the session stays in step."""

from __future__ import annotations

from tests.harness import BinarySession, BrokerProcess, TextSession

FORGED = "x\r\n+OK forged"
SHOWN = "'x\\r\\n+OK forged'"  # as a name=value field: escaped, quoted for its space


def test_fields_a_binary_client_chose_are_escaped_in_text_replies(broker: BrokerProcess) -> None:
    watcher, person = TextSession(broker.port), TextSession(broker.port)
    assert watcher.ask("MONITOR forge").startswith("+OK monitoring forge")
    b = BinarySession(broker.port)
    published = b.call("pub", queue="forge", body=b"job", key=FORGED, dedup_id=FORGED)
    (msg,) = b.call("get", queue="forge")["msgs"]
    assert b.call("nack", receipt=msg["receipt"], error=FORGED)["ok"]
    msg_id = published["msg_id"]

    person.send("PEEK forge")
    peeked = person.reply()
    assert len(peeked) == 2 and peeked[-1] == "+OK 1 messages", peeked
    assert f"key={SHOWN}" in peeked[0] and f"last_error={SHOWN}" in peeked[0]

    person.send(f"EXPLAIN {msg_id}")
    explained = person.reply()
    assert explained[-1].startswith("+OK ready"), explained
    assert "last_error: x\\r\\n+OK forged" in explained

    person.send(f"HISTORY {msg_id}")
    history = person.reply()
    assert len(history) == 4 and history[-1] == "+OK 3 events", history
    assert f"key={SHOWN}" in history[0] and f"dedup_id={SHOWN}" in history[0]
    assert f"error={SHOWN}" in history[2]
    assert person.ask("PING") == "+PONG"

    events = [watcher.read_line() for _ in range(3)]
    assert [e.split()[:1] + e.split()[4:5] for e in events] == [
        ["EVENT", "published"], ["EVENT", "leased"], ["EVENT", "nacked"]], events
    assert f"key={SHOWN}" in events[0] and f"error={SHOWN}" in events[2]
    assert watcher.ask("PING") == "+PONG"  # no forged line was left in between
