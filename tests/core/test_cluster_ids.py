"""The core under a clustered broker: ids made by the slot id maker, and queues forgotten when
their slot moves away."""

from __future__ import annotations

from mq.cluster.slots import SlotIds, slot_of, slot_of_id
from mq.core.broker import Broker
from mq.core.model import QueueSettings


def test_a_clustered_core_makes_ids_in_the_queues_slot() -> None:
    core = Broker(lambda: 100.0, QueueSettings(3600.0, 30.0), ids=SlotIds())
    a = core.publish("orders", b"x").msg_id
    b = core.publish("emails", b"y").msg_id
    assert slot_of_id(a) == slot_of("orders") and slot_of_id(b) == slot_of("emails")
    assert core.explain(a)["queue"] == "orders"


def test_forgetting_a_queue_drops_its_messages_leases_and_bindings_and_records_nothing() -> None:
    core = Broker(lambda: 100.0, QueueSettings(3600.0, 30.0))
    core.bind("t", "orders")
    core.publish("orders", b"1")
    core.publish("orders", b"2")
    core.publish("emails", b"3")
    core.lease("orders", "c1")
    core.take_effects()
    assert core.forget(["orders"]) == 2
    assert core.take_effects().changes == []
    assert core.queue_names() == ["emails"]
    assert core.bindings() == {} and core.leases_of("c1") == 0
    assert core.next_due_in() is not None  # emails' retention; orders' timers are skipped
    core.tick()
