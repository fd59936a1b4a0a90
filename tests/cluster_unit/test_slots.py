"""Slots, ids that carry them, and the ring's assignment of slots to brokers: pure, no engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mq.cluster import assign
from mq.cluster.slotmap import Broker, Owner, SlotMap
from mq.cluster.slots import (
    DLQ_SUFFIX,
    MAX_COUNTER,
    SLOTS,
    SlotIds,
    make_id,
    placement_key,
    same_slot,
    slot_of,
    slot_of_id,
)
from mq.core import model
from mq.limits import MAX_MSG_ID

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "slots.json").read_text())


@pytest.mark.parametrize("case", VECTORS["slots"], ids=lambda c: c["name"])
def test_every_shared_vector_gets_its_slot(case: dict[str, object]) -> None:
    assert placement_key(str(case["name"])) == case["key"]
    assert slot_of(str(case["name"])) == case["slot"]


def test_a_queue_and_its_default_dead_letter_queue_share_a_slot() -> None:
    assert DLQ_SUFFIX == model.DLQ_SUFFIX
    assert slot_of("orders") == slot_of(model.QueueSettings(60.0, 30.0).dead_letter_for("orders"))


def test_tags_put_queues_together_and_only_tags_do() -> None:
    assert same_slot("{video}.144p", "{video}.captions", "{video}")
    assert not same_slot("video.144p", "video.captions")  # these two differ without tags


def test_an_id_names_its_slot_and_stays_below_the_protocol_bound() -> None:
    assert slot_of_id(make_id(1, 1023)) == 1023
    assert make_id(1, 1) == 1025  # ids are not dense in a cluster
    assert make_id(MAX_COUNTER, SLOTS - 1) <= MAX_MSG_ID
    with pytest.raises(ValueError):
        make_id(MAX_COUNTER + 1, 0)
    with pytest.raises(ValueError):
        make_id(1, SLOTS)


def test_ids_of_a_loaded_slot_stay_above_what_it_holds() -> None:
    ids = SlotIds()
    ids.raise_past(make_id(500, 7))
    first = ids("orders")
    assert first > make_id(500, 7) and slot_of_id(first) == slot_of("orders")
    assert ids("orders") > first


def test_a_join_moves_about_a_third_and_a_death_only_the_dead_brokers_slots() -> None:
    two = assign.target(["b1", "b2"])
    three = assign.target(["b1", "b2", "b3"])
    assert len(two) == len(three) == SLOTS
    moved = [s for s in range(SLOTS) if two[s] != three[s]]
    assert all(three[s] == "b3" for s in moved)
    assert SLOTS * 0.2 < len(moved) < SLOTS * 0.45
    after_death = assign.target(["b1", "b3"])
    assert all(after_death[s] == three[s] for s in range(SLOTS) if three[s] != "b2")


def test_a_plan_gives_orphans_at_once_and_planned_moves_a_few_at_a_time() -> None:
    current = assign.target(["b1", "b2"])
    moves = assign.plan(current, ["b1", "b2", "b3"], max_moves=32)
    assert len(moves) == 32 and set(moves.values()) == {"b3"}
    dead = assign.plan(current, ["b1"], max_moves=32)  # b2 died: all of its slots go now
    assert set(dead) == {s for s, o in current.items() if o == "b2"}
    drained = assign.plan(assign.target(["b1", "b2", "b3"]), ["b1", "b2", "b3"],
                          leaving=["b3"], max_moves=SLOTS)
    assert "b3" not in drained.values() and len(drained) > 0


def test_a_map_reads_as_ranges_with_addresses() -> None:
    owners = {s: Owner("b1" if s < 512 else "b2", 10 + s) for s in range(SLOTS)}
    m = SlotMap(owners, {"b1": Broker("b1", "127.0.0.1:7811"), "b2": Broker("b2", "h:2")})
    d = m.describe()
    assert d["map_epoch"] == 10 + SLOTS - 1
    assert d["slots"] == [[0, 511, "b1", "127.0.0.1:7811"], [512, 1023, "b2", "h:2"]]
    assert d["brokers"]["b2"]["slots"] == 512
    with pytest.raises(ValueError):
        Broker("a/b", "h:1")
