"""The cluster client's pure parts: the slot function against the shared vectors, seed lists,
which slot a request is about, the MOVED error with where to go, and when a request without
its reply looks at the map."""

from __future__ import annotations

import json

import pytest
from sdk_vectors import VECTORS_PATH, vector

from mq_client import ops
from mq_client.cluster_routing import Attempts, DedupIds, OwnerChecks, SlotMap, Step, per_slot, slot_of_request
from mq_client.errors import (
    Moved,
    NotFound,
    OutcomeUnknown,
    ProtocolError,
    TryAgain,
    clone_error,
    error_from_reply,
)
from mq_client.retry import Retry
from mq_client.slots import murmur3_32, placement_key, slot_of, slot_of_id
from mq_client.url import parse_seeds

SLOT_VECTORS = json.loads((VECTORS_PATH.parent / "slots.json").read_text())["slots"]


@pytest.mark.parametrize("case", SLOT_VECTORS, ids=lambda c: c["name"])
def test_the_slot_of_every_shared_vector(case: dict[str, object]) -> None:
    assert placement_key(str(case["name"])) == case["key"]
    assert slot_of(str(case["name"])) == case["slot"]


def test_murmur3_gives_the_reference_values() -> None:
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"hello", 1) == 0xBB4ABCAD


def test_a_seed_list_is_several_addresses_with_one_set_of_credentials() -> None:
    seeds = parse_seeds("mq://u:p@127.0.0.1:7811,127.0.0.2:7812")
    assert [(a.host, a.port, a.user) for a in seeds] == [("127.0.0.1", 7811, "u"), ("127.0.0.2", 7812, "u")]
    assert len(parse_seeds("mq://127.0.0.1:7811")) == 1
    with pytest.raises(ValueError, match="empty entry"):
        parse_seeds("mq://127.0.0.1:7811,")


def test_a_request_is_about_the_slot_of_its_queue_or_its_message() -> None:
    assert slot_of_request(ops.publish("orders", b"x").fields) == slot_of("orders")
    assert slot_of_request(ops.ack(f"{5 << 10 | 77}.1").fields) == 77
    assert slot_of_request(ops.ping().fields) is None
    assert slot_of_id(5 << 10 | 77) == 77


def test_moved_says_where_and_survives_a_clone() -> None:
    moved = error_from_reply(vector("moved error reply")["meaning"])
    assert isinstance(moved, Moved) and (moved.slot, moved.addr, moved.map_epoch) == (137, "127.0.0.1:7812", 93)
    copy = clone_error(moved)
    assert isinstance(copy, Moved) and copy.addr == "127.0.0.1:7812"
    again = error_from_reply(vector("tryagain error reply")["meaning"])
    assert isinstance(again, TryAgain) and again.retryable


def test_the_map_names_each_slot_s_broker_and_a_moved_corrects_one() -> None:
    slot_map = SlotMap()
    slot_map.learn({"cluster": "t", "map_epoch": 7, "slots": [[0, 511, "b1", "h:1"], [512, 1023, "b2", "h:2"]]})
    assert (slot_map.addr(3), slot_map.addr(600), slot_map.addr(None), slot_map.epoch) == ("h:1", "h:2", None, 7)
    slot_map.moved(Moved("MOVED", "moved", False, 3, "h:3", 8))
    assert slot_map.addr(3) == "h:3"
    with pytest.raises(ProtocolError, match="not in a cluster"):
        slot_map.learn({"cluster": None, "map_epoch": 0, "slots": []})


def test_attempts_go_at_once_after_one_moved_then_back_off_until_the_deadline() -> None:
    moved = Moved("MOVED", "moved", False, 3, "h:3", 8)
    attempts = Attempts(10.0, started=100.0, backoff=Retry(first_s=0.5, cap_s=0.5, jitter=0))
    assert attempts.after(moved, 100.0) == Step(0.0, refresh=False)
    assert attempts.after(moved, 101.0) == Step(0.5, refresh=False)  # brokers pointing at each other
    assert attempts.after(TryAgain("TRYAGAIN", "loading"), 105.0) == Step(0.5, refresh=True)
    with pytest.raises(TryAgain):
        attempts.after(TryAgain("TRYAGAIN", "loading"), 110.5)
    with pytest.raises(NotFound):
        Attempts(10.0, 0.0).after(NotFound("NOT_FOUND", "no such message"), 0.0)  # not followed


def test_only_a_pub_gets_an_automatic_dedup_id_and_a_batch_ack_is_split_by_slot() -> None:
    dedup = DedupIds()
    first, second = dedup(ops.publish("q", b"x")), dedup(ops.publish("q", b"y"))
    assert first.fields["dedup_id"] != second.fields["dedup_id"]
    assert dedup(ops.publish("q", b"x", dedup_id="mine")).fields["dedup_id"] == "mine"
    assert "dedup_id" not in dedup(ops.get("q")).fields
    parts = per_slot(ops.ack_batch([f"{1 << 10 | 5}.1", f"{2 << 10 | 9}.1", f"{3 << 10 | 5}.2"]))
    assert sorted(p.fields["receipts"] for p in parts) == [[f"{1 << 10 | 5}.1", f"{3 << 10 | 5}.2"],
                                                          [f"{2 << 10 | 9}.1"]]


def test_a_call_lost_in_flight_is_resent_only_when_that_is_safe() -> None:
    attempts = Attempts(10.0, started=0.0, backoff=Retry(first_s=0.5, cap_s=0.5, jitter=0))
    assert attempts.after(OutcomeUnknown("lost after pub", safe_to_retry=True), 1.0) == Step(0.5, refresh=True)
    with pytest.raises(OutcomeUnknown):
        attempts.after(OutcomeUnknown("lost after purge", safe_to_retry=False), 1.0)


def test_a_request_may_take_its_own_wait_then_owner_check_s_before_the_map_is_looked_at() -> None:
    checks = OwnerChecks(owner_check_s=2.0)
    assert checks.patience_s(ops.publish("q", b"x").fields) == 2.0
    assert checks.patience_s(ops.get("q", wait_s=5).fields) == 7.0
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="owner_check_s"):
            OwnerChecks(bad)


def test_one_map_read_serves_the_checks_made_soon_after_it() -> None:
    checks = OwnerChecks(owner_check_s=2.0)
    assert checks.need_read(100.0)
    checks.map_read(100.0)
    assert not checks.need_read(100.4)  # many requests stalled at one broker: one read
    assert checks.need_read(100.5)


def test_the_owner_changed_only_when_the_map_names_another_broker() -> None:
    slot_map = SlotMap()
    slot_map.learn({"cluster": "t", "map_epoch": 7, "slots": [[0, 511, "b1", "h:1"], [512, 1023, "b2", "h:2"]]})
    assert not OwnerChecks.moved(slot_map, {3, 4}, "h:1")
    assert OwnerChecks.moved(slot_map, {3, 600}, "h:1")
    assert not OwnerChecks.moved(SlotMap(), {3}, "h:1")  # a map that names no one is no news
