"""Dead letters in the core with a fake clock: a message that used up its max_deliveries moves
to the dead-letter queue with its history, and a redrive moves it back with fresh tries."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Moved
from mq.errors import MQError


def test_max_deliveries_moves_to_dead_letter_with_history(core: Broker, clock: FakeClock) -> None:
    core.declare("jobs", max_deliveries=2)
    msg_id = core.publish("jobs", b"bad input").msg_id
    [m] = core.lease("jobs", "h")
    core.nack(m.msg_id, m.delivery, "h", error="ValueError: bad input")
    core.lease("jobs", "h", lease_s=1)
    clock.advance(1)
    core.tick()  # second delivery expires: max reached
    explained = core.explain(msg_id)
    assert (explained["queue"], explained["state"]) == ("jobs.dlq", "ready")
    assert explained["why"].startswith("dead-lettered from jobs: delivered 2 times "
                                       "(max_deliveries=2)")
    [peeked] = core.peek("jobs.dlq", 5)
    assert peeked["msg_id"] == msg_id and peeked["deliveries"] == 2
    assert peeked["last_error"] == "ValueError: bad input" and peeked["dead_from"] == "jobs"
    assert core.stats("jobs")["jobs"]["dead_lettered"] == 1


def test_redrive_moves_back_and_counts_deliveries_afresh(core: Broker) -> None:
    core.declare("jobs", max_deliveries=1, dead_letter="graveyard")
    core.publish("jobs", b"a")
    core.publish("jobs", b"b")
    for m in core.lease("jobs", "h", max_count=2):
        core.nack(m.msg_id, m.delivery, "h")
    assert core.stats("graveyard")["graveyard"]["ready"] == 2
    assert core.redrive("graveyard", 1) == 1
    [back] = core.lease("jobs", "h")
    assert back.body == b"a" and back.delivery == 2
    assert core.explain(back.msg_id)["why"].startswith("leased by h")  # not dead any more
    changes = core.take_effects().changes
    assert any(isinstance(c, Moved) and c.redrive for c in changes)
    core.nack(back.msg_id, back.delivery, "h")  # one more try used up: dead again
    assert core.explain(back.msg_id)["queue"] == "graveyard"


def test_declare_rejects_its_own_dead_letter(core: Broker) -> None:
    with pytest.raises(MQError):
        core.declare("q", dead_letter="q")
