"""The cluster client's pure parts: the slot function against the shared vectors, seed lists,
which slot a request is about, and the MOVED error with where to go."""

from __future__ import annotations

import json

import pytest
from sdk_vectors import VECTORS_PATH, vector

from mq_client import ops
from mq_client.cluster_link import slot_of_request
from mq_client.errors import Moved, TryAgain, clone_error, error_from_reply
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
