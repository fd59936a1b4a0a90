"""The history checker on hand-made histories: clean runs pass, and each kind of fault it must
catch fails it. Pure and fast, so it runs in `make test` too."""

from __future__ import annotations

from tests.cluster.history import (
    AckConfirmed,
    BrokerKilled,
    Delivered,
    History,
    HolderKilled,
    Lease,
    PublishConfirmed,
    PublishSent,
    check,
    holder_name,
    leases_from_events,
    receipt_delivery,
    recovery,
)

LEASE_S = 10.0


def published(h: History, msg_id: int, at: float, queue: str = "q", seq: int | None = None,
              producer: str = "p1") -> None:
    n = msg_id if seq is None else seq
    h.sent.append(PublishSent(producer, n, queue, at))
    h.confirmed.append(PublishConfirmed(producer, n, queue, msg_id, at + 0.01))


def consumed(h: History, msg_id: int, delivery: int, at: float, consumer: str = "w1",
             acked: bool = True) -> None:
    h.delivered.append(Delivered(consumer, msg_id, delivery, at))
    if acked:
        h.acked.append(AckConfirmed(consumer, msg_id, delivery, at + 0.01))


def lease(msg_id: int, delivery: int, holder: str, start: float, end: float | None) -> Lease:
    return Lease(msg_id, delivery, holder, start, start + LEASE_S, end)


def test_a_clean_run_passes() -> None:
    h = History()
    published(h, 1, 0.0)
    published(h, 2, 0.1)
    consumed(h, 1, 1, 0.2)
    consumed(h, 2, 1, 0.3)
    verdict = check(h, [lease(1, 1, "w1/aaaa", 0.19, 0.21), lease(2, 1, "w1/aaaa", 0.29, 0.31)])
    assert verdict.ok, verdict.summary()
    assert verdict.confirmed == 2


def test_a_confirmed_publish_never_delivered_is_lost() -> None:
    h = History()
    published(h, 1, 0.0)
    published(h, 2, 0.1)
    consumed(h, 1, 1, 0.2)
    verdict = check(h)
    assert not verdict.ok
    assert verdict.lost == (2,)
    assert "lost 1" in verdict.summary()


def test_a_publish_that_failed_unconfirmed_may_be_missing() -> None:
    h = History()
    h.sent.append(PublishSent("p1", 1, "q", 0.0))  # no confirmation: it may or may not exist
    assert check(h).ok


def test_a_delivered_message_never_acked_fails() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    verdict = check(h)
    assert verdict.unacked == (1,)
    assert not verdict.ok


def test_a_redelivery_after_a_confirmed_ack_fails() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2)
    consumed(h, 1, 2, 5.0, consumer="w2")
    verdict = check(h)
    assert verdict.acked_then_delivered == (1,)


def test_a_lease_logged_after_an_ack_fails_even_if_no_client_saw_it() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2)
    leases = [lease(1, 1, "w1/a", 0.19, 0.21), lease(1, 2, "w2/b", 20.0, None)]
    assert check(h, leases).acked_then_delivered == (1,)


def test_a_redelivery_after_an_expired_lease_is_fine() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)  # w1 stalled past its lease
    consumed(h, 1, 2, 10.5, consumer="w2")
    leases = [lease(1, 1, "w1/a", 0.19, 10.19), lease(1, 2, "w2/b", 10.4, 10.6)]
    verdict = check(h, leases)
    assert verdict.ok, verdict.summary()


def test_two_live_leases_at_once_are_a_double_lease() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    consumed(h, 1, 2, 3.0, consumer="w2")
    # The broker logged w1's lease with no end, then gave the message to w2 3 s later.
    leases = [lease(1, 1, "w1/a", 0.19, None), lease(1, 2, "w2/b", 2.99, 3.01)]
    verdict = check(h, leases)
    assert len(verdict.double_leases) == 1
    overlap = verdict.double_leases[0]
    assert (overlap.first.delivery, overlap.second.delivery) == (1, 2)
    assert abs(overlap.seconds - 0.02) < 1e-9
    assert "live together" in verdict.summary()


def test_a_broker_death_ends_no_lease() -> None:
    """A broker killed while w1 held a lease: w1 lives on, so the new owner must wait for the
    deadline before it gives the message to w2."""
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    h.brokers_killed.append(BrokerKilled("b1", 1.0))
    consumed(h, 1, 2, 4.0, consumer="w2")
    leases = [lease(1, 1, "w1/a", 0.19, None), lease(1, 2, "w2/b", 3.99, 4.01)]
    assert len(check(h, leases).double_leases) == 1


def test_a_killed_consumer_holds_nothing_from_its_kill_on() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    h.holders_killed.append(HolderKilled("w1", 1.0))
    consumed(h, 1, 2, 4.0, consumer="w2")
    leases = [lease(1, 1, "w1/a", 0.19, None), lease(1, 2, "w2/b", 3.99, 4.01)]
    verdict = check(h, leases)
    assert verdict.ok, verdict.summary()


def test_a_consumer_killed_after_the_second_lease_began_still_overlapped() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    consumed(h, 1, 2, 2.0, consumer="w2")
    h.holders_killed.append(HolderKilled("w1", 3.0))
    leases = [lease(1, 1, "w1/a", 0.19, None), lease(1, 2, "w2/b", 1.99, 2.01)]
    assert len(check(h, leases).double_leases) == 1


def test_a_release_of_a_dead_holder_ends_its_lease() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    consumed(h, 1, 2, 3.5, consumer="w2")
    events = [
        {"at": 0.01, "event": "published", "queue": "q"},
        {"at": 0.19, "event": "leased", "delivery": 1, "holder": "w1/a"},
        {"at": 3.2, "event": "released (holder died)", "holder": "w1/a"},
        {"at": 3.49, "event": "leased", "delivery": 2, "holder": "w2/b"},
        {"at": 3.52, "event": "acked"},
    ]
    leases = leases_from_events(1, events, LEASE_S)
    assert [(x.delivery, x.end) for x in leases] == [(1, 3.2), (2, 3.52)]
    assert check(h, leases).ok


def test_leases_from_events_use_the_reported_deadline_and_touches() -> None:
    events = [
        {"at": 1.0, "event": "leased", "delivery": 1, "holder": "w1/a", "deadline": 4.0},
        {"at": 2.0, "event": "touched", "delivery": 1, "deadline": 9.0},
        {"at": 9.0, "event": "lease expired"},
        {"at": 9.5, "event": "leased", "delivery": 2, "holder": "w2/b"},
    ]
    first, second = leases_from_events(7, events, LEASE_S)
    assert (first.deadline, first.end) == (9.0, 9.0)
    assert (second.start, second.deadline, second.end) == (9.5, 9.5 + LEASE_S, None)


def test_a_lease_the_log_never_ended_is_live_to_its_deadline() -> None:
    events = [
        {"at": 1.0, "event": "leased", "delivery": 1, "holder": "w1/a"},
        {"at": 2.0, "event": "leased", "delivery": 2, "holder": "w2/b"},
        {"at": 2.1, "event": "acked"},
    ]
    leases = leases_from_events(3, events, LEASE_S)
    assert [(x.delivery, x.end) for x in leases] == [(1, None), (2, 2.1)]
    h = History()
    published(h, 3, 0.0)
    consumed(h, 3, 2, 2.05, consumer="w2")
    assert len(check(h, leases).double_leases) == 1


def test_a_delivery_the_log_has_no_lease_for_is_a_phantom() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 2, 0.2)
    verdict = check(h, [lease(1, 1, "w1/a", 0.1, 0.15)])
    assert verdict.phantom_deliveries == ((1, 2),)
    assert check(h).phantom_deliveries == ()  # without the log there is nothing to compare


def test_one_msg_id_confirmed_for_two_publishes_fails() -> None:
    h = History()
    published(h, 1, 0.0, seq=1)
    published(h, 1, 0.5, seq=2)
    consumed(h, 1, 1, 1.0)
    assert check(h).ids_reused == (1,)


def test_a_retried_publish_deduplicated_to_one_id_is_fine() -> None:
    h = History()
    published(h, 1, 0.0, seq=1)
    h.confirmed.append(PublishConfirmed("p1", 1, "q", 1, 0.9))  # the retry, deduplicated
    consumed(h, 1, 1, 1.0)
    assert check(h).ok


def test_recovery_is_the_slowest_queue_after_each_fault() -> None:
    h = History()
    for t in (0.0, 1.0, 2.0, 6.0):  # queue a: served 4 s after the fault at 2.0
        h.confirmed.append(PublishConfirmed("p1", int(t * 10), "a", int(t * 10), t))
    for t in (0.5, 2.5, 10.5, 11.0):  # queue b: 0.5 s after the fault at 2.0, 0.5 after 10
        h.confirmed.append(PublishConfirmed("p1", 100 + int(t * 10), "b", 0, t))
    h.brokers_killed += [BrokerKilled("b1", 2.0), BrokerKilled("b2", 10.0)]
    r = recovery(h, ["a", "b"])
    assert r.times_s[0] == 4.0
    assert r.times_s[1] == float("inf")  # queue a never came back after the second fault
    assert r.median_s == float("inf")
    assert "2 faults" in str(r)


def test_names_from_holders_and_receipts() -> None:
    assert holder_name("w1/0123abcd") == "w1"
    assert holder_name("conn-7") == "conn-7"
    assert receipt_delivery("1025.3") == (1025, 3)


def test_an_ack_the_log_holds_counts_though_its_confirmation_was_lost() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)  # the broker died before its ack reply went out
    events = [{"at": 0.19, "event": "leased", "delivery": 1, "holder": "w1/a"},
              {"at": 0.25, "event": "acked"}]
    assert check(h).unacked == (1,)
    assert check(h, leases_from_events(1, events, LEASE_S)).ok


def test_a_logged_ack_then_a_later_lease_fails() -> None:
    h = History()
    published(h, 1, 0.0)
    consumed(h, 1, 1, 0.2, acked=False)
    consumed(h, 1, 2, 12.0, consumer="w2")
    events = [{"at": 0.19, "event": "leased", "delivery": 1, "holder": "w1/a"},
              {"at": 0.25, "event": "acked"},
              {"at": 11.9, "event": "leased", "delivery": 2, "holder": "w2/b"},
              {"at": 12.1, "event": "acked"}]
    assert check(h, leases_from_events(1, events, LEASE_S)).acked_then_delivered == (1,)
