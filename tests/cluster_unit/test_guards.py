"""The two pure decisions behind a broker's place in the cluster, on a fake clock: the
controller's stable-membership guard, and when a broker whose database is away gives up its
membership and when it joins again."""

from __future__ import annotations

from mq.cluster import assign
from mq.cluster.stable import StableMembership
from mq.cluster.store_watch import Step, StoreWatch, step
from mq.core.clock import FakeClock

THREE = frozenset({"b1", "b2", "b3"})
NONE: frozenset[str] = frozenset()


def test_membership_is_stable_only_once_unchanged_for_the_settle_time() -> None:
    clock = FakeClock(100.0)
    guard = StableMembership(6.0, clock)
    assert not guard.stable(THREE, NONE)  # a controller just elected moves nothing at first
    clock.advance(5.9)
    assert not guard.stable(THREE, NONE)
    clock.advance(0.1)
    assert guard.stable(THREE, NONE)
    clock.advance(0.5)
    assert not guard.stable(THREE - {"b3"}, NONE)  # any change starts the count again
    clock.advance(3.0)
    assert not guard.stable(THREE, NONE)  # b3 back after a lapse: still settling
    clock.advance(5.0)
    assert not guard.stable(THREE, frozenset({"b3"}))  # a drain is a change too
    clock.advance(6.0)
    assert guard.stable(THREE, frozenset({"b3"}))


def test_while_membership_settles_only_a_dead_brokers_slots_move() -> None:
    balanced = assign.target({"b1", "b2"})
    # b2 died (its slots serve nobody) and b3 joined (slots would move to it to spread load):
    # with max_moves 0, as while the membership settles, only the first kind moves.
    moves = assign.plan(balanced, {"b1", "b3"}, max_moves=0)
    assert set(moves) == {s for s, o in balanced.items() if o == "b2"}
    assert assign.plan(balanced, {"b1", "b2"}, max_moves=0) == {}


def test_the_store_is_away_from_the_oldest_work_left_without_a_reply() -> None:
    clock = FakeClock(10.0)
    watch = StoreWatch(clock)
    assert watch.away_s() == 0.0
    watch.asking()
    clock.advance(0.2)
    watch.done(True)
    assert watch.away_s() == 0.0  # answered
    watch.asking()  # a commit that hangs on a blackholed connection
    clock.advance(2.0)
    watch.asking()  # a probe queued behind it
    clock.advance(1.0)
    assert watch.away_s() == 3.0
    watch.done(False)  # the probe timed out
    clock.advance(1.0)
    assert watch.away_s() == 4.0
    watch.done(False)  # the commit failed: no reply, and nothing answered since
    clock.advance(1.0)
    assert watch.away_s() == 5.0
    watch.asking()
    watch.done(True)  # the database is back
    assert watch.away_s() == 0.0


def test_a_reply_with_work_still_waiting_restarts_the_count_from_the_reply() -> None:
    clock = FakeClock(10.0)
    watch = StoreWatch(clock)
    watch.asking()
    watch.asking()
    clock.advance(4.0)
    watch.done(True)
    clock.advance(1.0)
    assert watch.away_s() == 1.0


def test_a_long_read_that_keeps_getting_replies_is_no_outage() -> None:
    clock = FakeClock(10.0)
    watch = StoreWatch(clock)
    watch.asking()  # loading a big slot, one chunk of rows after another
    for _ in range(10):
        clock.advance(1.0)
        watch.heard()
    clock.advance(0.5)
    assert watch.away_s() == 0.5
    watch.done(True)
    watch.heard()  # a reply with nothing waiting changes nothing
    assert watch.away_s() == 0.0


def test_a_broker_that_stood_still_gives_the_database_its_full_time_again() -> None:
    clock = FakeClock(10.0)
    watch = StoreWatch(clock)
    watch.asking()  # a commit in flight when the broker was paused
    clock.advance(10.0)
    watch.forgive()  # woken: its reply may be in the socket, unread
    assert step(watch.away_s(), 5.0, member=True) is Step.STAY
    clock.advance(5.5)
    assert step(watch.away_s(), 5.0, member=True) is Step.LEAVE  # still nothing: away


def test_a_member_leaves_past_the_timeout_and_rejoins_once_the_store_answers() -> None:
    clock = FakeClock(10.0)
    watch = StoreWatch(clock)
    watch.asking()
    clock.advance(5.0)
    assert step(watch.away_s(), 5.0, member=True) is Step.STAY  # not past the bound yet
    clock.advance(0.1)
    assert step(watch.away_s(), 5.0, member=True) is Step.LEAVE
    assert step(watch.away_s(), 5.0, member=False) is Step.STAY  # out, still no answer
    watch.done(True)
    assert step(watch.away_s(), 5.0, member=False) is Step.REJOIN
    assert step(watch.away_s(), 5.0, member=True) is Step.STAY
