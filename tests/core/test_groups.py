"""Consumer groups in the core, with a fake clock: key ownership, credit, keys in flight,
holders dying, and poison. The ring is the real one (it is pure)."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.events import Left, Moved, Released
from mq.core.model import Joined, QueueSettings
from mq.errors import Code, MQError
from mq.ring import HashRing


@pytest.fixture
def core() -> Broker:
    return Broker(FakeClock(), QueueSettings(retention_s=3600, lease_s=60),
                  ring_factory=lambda: HashRing(vnodes=64), poison_deaths=2)


def join(core: Broker, *names: str, prefetch: int = 1000) -> None:
    for name in names:
        core.join("orders", "cooks", name, f"{name}/s", prefetch)


def publish_keyed(core: Broker, keys: int, per_key: int) -> dict[int, str]:
    ids = {}
    for round_ in range(per_key):
        for k in range(keys):
            key = f"store-{k}"
            ids[core.publish("orders", f"{k}:{round_}".encode(), key=key).msg_id] = key
    return ids


def drain(core: Broker, name: str) -> list[int]:
    return [d.msg_id for d in core.lease("orders", f"{name}/s", max_count=1000)]


def owner(core: Broker, key: str) -> str | None:
    return core.key_owner("orders", key)


def test_keyed_messages_go_only_to_their_owner() -> None:
    core = Broker(FakeClock(), QueueSettings(3600, 60), ring_factory=lambda: HashRing(vnodes=64))
    join(core, "alice", "bob", "carol")
    ids = publish_keyed(core, keys=30, per_key=3)
    got = {name: drain(core, name) for name in ("alice", "bob", "carol")}
    assert sorted(i for ids_ in got.values() for i in ids_) == sorted(ids)
    for name, leased in got.items():
        assert leased == sorted(leased)  # FIFO within what a member may take
        assert {owner(core, ids[i]) for i in leased} == {name}


def test_unkeyed_messages_go_to_anyone_with_credit(core: Broker) -> None:
    join(core, "alice", prefetch=2)
    join(core, "bob", prefetch=5)
    ids = [core.publish("orders", b"x").msg_id for _ in range(6)]
    assert drain(core, "alice") == ids[:2]  # credit 2
    assert drain(core, "bob") == ids[2:6]
    assert drain(core, "alice") == []


def test_credit_returns_with_acks(core: Broker) -> None:
    join(core, "alice", prefetch=1)
    core.publish("orders", b"a")
    core.publish("orders", b"b")
    [first] = core.lease("orders", "alice/s", max_count=10)
    assert core.lease("orders", "alice/s") == []
    core.take_effects()  # start afresh
    core.ack(first.msg_id, first.delivery, "alice/s")
    assert "orders" in core.take_effects().woken  # a waiting GET of the member may be served now
    assert [m.body for m in core.lease("orders", "alice/s")] == [b"b"]


def test_a_key_in_flight_is_not_handed_to_the_new_owner(core: Broker) -> None:
    join(core, "alice")
    first = core.publish("orders", b"1", key="k").msg_id
    second = core.publish("orders", b"2", key="k").msg_id
    [m] = core.lease("orders", "alice/s")
    assert m.msg_id == first
    # bob joins; find a name that takes over key k
    newcomer = next(n for n in (f"bob{i}" for i in range(200))
                    if HashRing([n, "alice"], vnodes=64).owner("k") == n)
    join(core, newcomer)
    assert owner(core, "k") == newcomer
    assert drain(core, newcomer) == []  # k is still in flight on alice
    assert drain(core, "alice") == []  # and alice no longer owns it
    core.ack(m.msg_id, m.delivery, "alice/s")
    assert drain(core, newcomer) == [second]


def test_removing_a_member_moves_only_its_keys(core: Broker) -> None:
    join(core, "alice", "bob", "carol")
    before = {f"store-{k}": owner(core, f"store-{k}") for k in range(200)}
    core.leave("orders", "bob")
    after = {k: owner(core, k) for k in before}
    assert {k for k in before if before[k] != after[k]} == {k for k in before if before[k] == "bob"}


def test_dead_holder_releases_everything_at_once(core: Broker) -> None:
    join(core, "alice", "bob")
    ids = publish_keyed(core, keys=20, per_key=2)
    bob_had = drain(core, "bob")
    alice_had = drain(core, "alice")
    assert bob_had and alice_had
    core.take_effects()  # start afresh
    released, poisoned = core.release_holder("bob/s")
    assert (released, poisoned) == (len(bob_had), 0)
    changes = core.take_effects().changes
    assert [c.msg_id for c in changes if isinstance(c, Released)] == sorted(bob_had)
    stats = core.group_stats("orders")
    assert stats is not None and set(stats["members"]) == {"alice"}
    # alice now owns every key, but bob's keys were not in flight elsewhere: she gets them all
    again = core.lease("orders", "alice/s", max_count=1000)
    assert sorted(d.msg_id for d in again) == sorted(bob_had)
    assert all(d.delivery == 2 for d in again)
    assert set(ids) == set(alice_had) | {d.msg_id for d in again}


def test_poison_after_repeated_deaths(core: Broker) -> None:
    """A message whose holders die `poison_deaths` times goes to the dead-letter queue with
    the reason, instead of killing a third worker."""
    msg_id = core.publish("orders", b"kills workers").msg_id
    for holder in ("w1", "w2"):
        core.lease("orders", holder)
        core.take_effects()  # start afresh
        core.release_holder(holder)
        changes = core.take_effects().changes
    moved = [c for c in changes if isinstance(c, Moved)]
    assert [(c.msg_id, c.queue) for c in moved] == [(msg_id, "orders.dlq")]
    assert "2 consumers died" in moved[0].reason
    explained = core.explain(msg_id)
    assert (explained["queue"], explained["state"]) == ("orders.dlq", "ready")
    assert explained["why"].startswith("dead-lettered from orders: poison")
    assert core.lease("orders", "w3") == []
    stats = core.stats("orders")["orders"]
    assert (stats["poisoned"], stats["ready"], stats["released"], stats["dead_lettered"]) == (
        1, 0, 1, 1)
    assert [x["msg_id"] for x in core.peek("orders.dlq", 10)] == [msg_id]


def test_goodbye_is_not_a_death(core: Broker) -> None:
    """A holder that leaves gives its leases back as Left (not Released, not a nack): however
    often, the message is never poison."""
    msg_id = core.publish("orders", b"x").msg_id  # poison_deaths=2
    for holder in ("w1", "w2", "w3"):
        core.lease("orders", holder)
        core.take_effects()  # start afresh
        assert core.release_holder(holder, died=False) == (1, 0)
        assert core.take_effects().changes == [Left(msg_id, core.clock(), holder, "orders")]
    explained = core.explain(msg_id)
    assert (explained["queue"], explained["state"], explained["deliveries"]) == (
        "orders", "ready", 3)
    assert core.stats("orders")["orders"]["released"] == 0  # counts deaths only


def test_non_members_get_only_unkeyed_while_the_group_has_members(core: Broker) -> None:
    keyed = core.publish("orders", b"k", key="k").msg_id
    plain = core.publish("orders", b"p").msg_id
    join(core, "alice")
    assert [d.msg_id for d in core.lease("orders", "outsider", max_count=10)] == [plain]
    core.leave("orders", "alice")
    assert [d.msg_id for d in core.lease("orders", "outsider", max_count=10)] == [keyed]


def test_join_answers_the_group_and_how_many_members_it_has(core: Broker) -> None:
    assert core.join("orders", "cooks", "alice", "alice/s", 5) == Joined("cooks", 1)
    assert core.join("orders", "cooks", "bob", "bob/s", 5) == Joined("cooks", 2)
    assert core.join("orders", "cooks", "alice", "alice/s", 9) == Joined("cooks", 2)  # again


def test_name_taken_and_group_name(core: Broker) -> None:
    join(core, "alice")
    with pytest.raises(MQError) as e:
        core.join("orders", "cooks", "alice", "impostor/s", 10)
    assert e.value.code is Code.NAME_TAKEN
    with pytest.raises(MQError) as e:
        core.join("orders", "waiters", "bob", "bob/s", 10)
    assert e.value.code is Code.BAD_REQUEST


def test_group_stats(core: Broker) -> None:
    join(core, "alice", "bob", prefetch=7)
    publish_keyed(core, keys=10, per_key=1)
    drain(core, "alice")
    stats = core.group_stats("orders")
    assert stats is not None and stats["group"] == "cooks"
    members = stats["members"]
    assert members["alice"]["prefetch"] == 7
    assert members["alice"]["keys"] + members["bob"]["keys"] == 10
    assert members["alice"]["leases"] == min(7, members["alice"]["keys"])
    assert abs(members["alice"]["ring_share"] + members["bob"]["ring_share"] - 1) < 0.001


def test_a_blocked_key_waits_while_others_go_and_comes_back_when_freed(core: Broker) -> None:
    """A key in flight elsewhere is set aside, not looked at again on every lease: its owner
    takes the other keys meanwhile, in order, and that key as soon as it is freed (also when
    it was freed by a nack, and by a purge of the message in flight)."""
    join(core, "alice")
    held = core.publish("orders", b"h1", key="hot").msg_id
    [m] = core.lease("orders", "alice/s")
    assert m.msg_id == held
    second_hot = core.publish("orders", b"h2", key="hot").msg_id
    newcomer = next(n for n in (f"bob{i}" for i in range(200))
                    if HashRing([n, "alice"], vnodes=64).owner("hot") == n)
    join(core, newcomer)
    others = [k for k in (f"cold-{i}" for i in range(50)) if owner(core, k) == newcomer][:5]
    cold = [core.publish("orders", k.encode(), key=k).msg_id for k in others]
    assert [d.msg_id for d in core.lease("orders", f"{newcomer}/s")] == [cold[0]]  # not hot
    assert drain(core, newcomer) == cold[1:]
    core.nack(m.msg_id, m.delivery, "alice/s")  # alice lets go: hot is free, both ready
    assert drain(core, newcomer) == [held, second_hot]


def test_a_group_whose_members_all_left_indexes_again_when_one_joins(core: Broker) -> None:
    join(core, "alice")
    core.leave("orders", "alice")
    ids = publish_keyed(core, keys=3, per_key=2)
    first = core.lease("orders", "outsider", max_count=2)  # no members: anyone takes anything
    assert [d.msg_id for d in first] == sorted(ids)[:2]
    join(core, "alice")
    assert drain(core, "alice") == [3, 6]  # keys store-0 and store-1 are in flight elsewhere
    for d in first:
        core.ack(d.msg_id, d.delivery, "outsider")
    assert drain(core, "alice") == [4, 5]
    assert core.lease("orders", "outsider") == []


@pytest.mark.timeout(60)  # a bound, not a speed: a scan of every key per lease takes hours
def test_a_hundred_thousand_keys_and_two_members_lease_them_all() -> None:
    """Every message has its own key: each member gets exactly the keys it owns, in id order,
    and the two together get all of them, each once."""
    core = Broker(FakeClock(), QueueSettings(retention_s=3600, lease_s=60),
                  ring_factory=lambda: HashRing(vnodes=64))
    join(core, "alice", "bob", prefetch=1_000)
    keys = 100_000
    for i in range(keys):
        core.publish("orders", b"x", key=f"k{i}")
    got: dict[str, list[int]] = {"alice": [], "bob": []}
    for _ in range(keys):  # bounded: each round takes at least one message, or stops
        batch = {name: core.lease("orders", f"{name}/s", max_count=1_000) for name in got}
        if not any(batch.values()):
            break
        for name, leased in batch.items():
            got[name] += [d.msg_id for d in leased]
            for d in leased:
                core.ack(d.msg_id, d.delivery, f"{name}/s")
    assert sorted(got["alice"] + got["bob"]) == list(range(1, keys + 1))
    for name, ids in got.items():
        assert ids == sorted(ids)
        assert {owner(core, f"k{i - 1}") for i in ids[::997]} == {name}


def test_peek_of_a_group_queue_shows_what_is_ready_after_much_was_consumed(core: Broker) -> None:
    """The group delivers from its own index; the queue's delivery order, which PEEK, REDRIVE
    and EXPLAIN read, must not fill up with what the group consumed meanwhile."""
    join(core, "alice", prefetch=3_000)
    for _ in range(3_000):
        core.publish("orders", b"x")
    for d in core.lease("orders", "alice/s", max_count=3_000):
        core.ack(d.msg_id, d.delivery, "alice/s")
    later = [core.publish("orders", b"y").msg_id for _ in range(3)]
    assert [m["msg_id"] for m in core.peek("orders", 10)] == later
    assert core.explain(later[2])["why"].endswith("2 messages ahead of it; the next GET takes "
                                                  "it after those")
