"""Which requests a clustered broker serves, answers MOVED, TRYAGAIN or CROSSSLOT: the router on
a map value, with no sockets and no etcd."""

from __future__ import annotations

from mq.cluster.slotmap import Broker, Owner, SlotMap
from mq.cluster.slots import make_id, slot_of
from mq.codec.commands import AckMany, Bind, Ping, Publish
from mq.codec.values import Receipt
from mq.errors import Code
from mq.server.routing import Router

MINE, THEIRS = slot_of("orders"), slot_of("emails")


def router() -> Router:
    r = Router("b1")
    r.map = SlotMap({MINE: Owner("b1", 7), THEIRS: Owner("b2", 9)},
                    {"b1": Broker("b1", "127.0.0.1:7811"), "b2": Broker("b2", "127.0.0.1:7812")})
    r.serving.add(MINE)
    return r


def test_a_served_slot_runs_and_another_brokers_slot_is_moved_there() -> None:
    r = router()
    assert r.refusal(Publish("orders", b"x")) is None
    moved = r.refusal(Publish("emails", b"x"))
    assert moved is not None and moved.code is Code.MOVED
    assert moved.details == {"slot": THEIRS, "addr": "127.0.0.1:7812", "map_epoch": 9}
    assert moved.message.startswith(f"{THEIRS} 127.0.0.1:7812 ")


def test_a_receipt_routes_by_its_id_alone() -> None:
    r = router()
    theirs = r.refusal(AckMany((Receipt(make_id(5, THEIRS), 1),)))
    assert theirs is not None and theirs.code is Code.MOVED
    assert r.refusal(AckMany((Receipt(make_id(5, MINE), 1), Receipt(make_id(6, MINE), 1)))) is None


def test_a_slot_that_loads_or_has_no_owner_says_try_again() -> None:
    r = router()
    r.serving.discard(MINE)
    r.loading.add(MINE)
    loading = r.refusal(Publish("orders", b"x"))
    unassigned = r.refusal(Publish("{nobody}", b"x"))
    assert loading is not None and loading.code is Code.TRYAGAIN
    assert unassigned is not None and unassigned.code is Code.TRYAGAIN


def test_tying_queues_of_two_slots_is_cross_slot_and_what_names_no_queue_runs_anywhere() -> None:
    r = router()
    cross = r.refusal(Bind("emails", "orders"))
    assert cross is not None and cross.code is Code.CROSSSLOT
    assert r.refusal(Bind("{orders}.events", "orders")) is None or slot_of(
        "{orders}.events") != MINE
    assert r.refusal(Ping()) is None
