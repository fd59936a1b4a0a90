"""Queue features survive a SIGKILLed broker: delays in progress, dead letters and their
reasons, fan-out copies sharing one stored body, bindings, priorities, settings, dedup ids."""

from __future__ import annotations

import time
from pathlib import Path

from mq_client import Client

from tests.harness import BrokerProcess, TextSession, wait_until


def test_state_of_every_feature_survives_sigkill(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db") as broker:
        t = TextSession(broker.port)
        t.ask("DECLARE jobs max_deliveries=1 dedup_window_s=600")
        published_at = time.time()
        assert t.ask("PUB jobs delay_s=1.5 wake me later") == "+OK 1"
        assert t.ask("PUB jobs dedup=j-2 poison pill") == "+OK 2"
        assert t.ask("GET jobs") == "MSG 2.1 jobs 1 poison pill"
        assert t.ask("NACK 2.1 0 segfault") == "+OK"  # max_deliveries=1: dead-lettered
        t.ask("BIND videos p144")
        t.ask("BIND videos p720")
        assert t.ask("FANOUT videos movie") == "+OK 2 copies: p144=3 p720=4"
        assert t.ask("GET p144") == "MSG 3.1 p144 1 movie"
        assert t.ask("ACK 3.1") == "+OK"  # the copy holding the body is finished
        assert t.ask("PUB prio priority=2 second") == "+OK 5"
        assert t.ask("PUB prio priority=9 first") == "+OK 6"
        assert t.ask("PUB later delay_s=600 next week") == "+OK 7"
        ready_at = explained(t, 7, "ready_at")
        broker.kill()
        broker.start()

        t = TextSession(broker.port)
        assert t.ask("PUB jobs dedup=j-2 poison pill") == "+OK 2 duplicate"
        t.send("PEEK jobs.dlq")
        dead = t.reply()
        assert dead[-1] == "+OK 1 messages" and "last_error=segfault" in dead[0].replace("'", "")
        assert t.ask("GET p720") == "MSG 4.1 p720 1 movie"  # body kept for the live copy
        t.send("BINDINGS videos")
        assert t.reply() == ["videos -> p144, p720", "+OK 1 topics"]
        assert t.ask("GET prio") == "MSG 6.1 prio 1 first"
        # A delay in progress outlives the restart: still delayed, and until the same time
        # (a delay of 600 s, so that no restart, however slow, sees it end) ...
        assert t.ask("GET later") == "+EMPTY"
        assert explained(t, 7, "ready_at") == ready_at
        # ... and a delay that ends comes out then, not before (its end counts from the
        # publish, so a slow restart can only shorten the wait, not fail the check)
        assert t.ask("GET jobs 30 5") == "MSG 1.1 jobs 1 wake me later"
        assert time.time() >= published_at + 1.5
        assert t.ask("DECLARE jobs").endswith("max_deliveries=1 dead_letter=jobs.dlq "
                                              "dedup_window_s=600")


def explained(t: TextSession, msg_id: int, field: str) -> str:
    """The value of `field` in the broker's EXPLAIN of `msg_id` (text mode)."""
    t.send(f"EXPLAIN {msg_id}")
    values = [line.split(": ", 1)[1] for line in t.reply() if line.startswith(f"{field}: ")]
    assert len(values) == 1, f"EXPLAIN {msg_id} has no single {field}"
    return values[0]


def compacted(broker: BrokerProcess) -> None:
    """Wait until the broker has compacted its finished messages and committed that. The
    backlog empties when a compaction begins; the group commit writes the next publish only
    once that compaction's transaction is done, so the publish's reply says it is."""
    with Client.connect(broker.url) as mq:
        wait_until(lambda: mq.stats()["server"]["compaction_backlog"] == 0,
                   "the broker compacted every finished message")
        mq.publish("after-compaction", b"a barrier")


def test_fanout_body_survives_compaction_of_its_holder(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db", "--keep-history-s", "0") as broker:
        t = TextSession(broker.port)
        t.ask("BIND news a")
        t.ask("BIND news b")
        assert t.ask("FANOUT news headline") == "+OK 2 copies: a=1 b=2"
        assert t.ask("GET a") == "MSG 1.1 a 1 headline"
        assert t.ask("ACK 1.1") == "+OK"
        compacted(broker)
        broker.kill()
        broker.start()
        t = TextSession(broker.port)
        assert t.ask("GET b") == "MSG 2.1 b 1 headline"
        assert t.ask("ACK 2.1") == "+OK"
        compacted(broker)
        broker.kill()
        broker.start()
        t = TextSession(broker.port)
        t.send("HISTORY 1")
        assert t.reply()[-1].startswith("+OK 0 events")  # both gone once nobody needs the body
