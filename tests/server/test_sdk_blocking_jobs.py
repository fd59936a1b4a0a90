"""`consume_blocking()`, the blocking job runner, against a real broker process: a failing job is
nacked with its error and retried with growing delays, one log line a failure; a long job keeps
its lease while its handler uses the same client; `stop` ends the run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from mq_client import Client, Message, Retry, consume_blocking

from tests.harness import BrokerProcess


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker for the module (each test has queues of its own): starts are the slow part."""
    with BrokerProcess(tmp_path_factory.mktemp("blocking-jobs") / "mq.db") as proc:
        yield proc


def test_a_failing_job_is_retried_later_and_later_and_its_error_is_kept(
        broker: BrokerProcess, caplog: pytest.LogCaptureFixture) -> None:
    tries: list[float] = []

    def handler(msg: Message) -> None:
        tries.append(time.monotonic())
        raise ValueError(f"bad input {msg.body.decode()}")

    with (Client.connect(broker.url) as mq,
          caplog.at_level(logging.DEBUG, logger="mq_client.blocking_consumer")):
        mq.declare("failing", max_deliveries=3)
        mq.publish("failing", b"7")
        retry = Retry(first_s=0.2, cap_s=10, jitter=0)
        assert consume_blocking(mq, "failing", handler, wait_s=2, max_messages=3, retry=retry) == 3
        (dead,) = mq.peek("failing.dlq")
        assert (dead.deliveries, dead.last_error) == (3, "ValueError: bad input 7")
        assert mq.stats("failing")["queues"]["failing"]["dead_lettered"] == 1
    # Delays of 0.2 s, then 0.4 s, held by the broker (nack's delay_s), not slept by the client.
    assert tries[1] - tries[0] >= 0.2 and tries[2] - tries[1] >= 0.4
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 3 and all(r.exc_info is None for r in failures)  # one line each
    assert "ValueError: bad input 7" in failures[0].getMessage()
    assert "delivered again in 0.2 s" in failures[0].getMessage()


def test_a_long_job_keeps_its_lease_while_its_handler_uses_the_same_client(
        broker: BrokerProcess) -> None:
    started = threading.Event()

    def handler(msg: Message) -> None:
        started.set()
        for step in range(10):  # 1 s in all, more than three leases of 0.3 s
            mq.publish("steps", str(step))  # the client the touches go through, from this thread
            time.sleep(0.1)

    with Client.connect(broker.url) as mq, Client.connect(broker.url) as other:
        mq.publish("jobs", b"long")
        handled: list[int] = []
        run = threading.Thread(target=lambda: handled.append(
            consume_blocking(mq, "jobs", handler, lease_s=0.3, max_messages=1)))
        run.start()
        assert started.wait(10)
        # Meanwhile the message is never ready for anyone else.
        assert other.get("jobs", wait_s=0.8) == []
        run.join(10)
        assert handled == [1]
        stats = other.stats()["queues"]
        jobs = stats["jobs"]
        assert (jobs["acked"], jobs["expired"], jobs["ready"]) == (1, 0, 0)
        assert stats["steps"]["ready"] == 10
    # The keeper thread ended with the run.
    assert not [t for t in threading.enumerate() if t.name == "mq-consume-touch"]


def test_stop_ends_the_run_and_gives_back_what_it_did_not_start(broker: BrokerProcess) -> None:
    stop = threading.Event()
    seen: list[bytes] = []

    def handler(msg: Message) -> None:
        seen.append(msg.body)
        stop.set()  # as a signal handler or another thread would

    with Client.connect(broker.url) as mq:
        mq.publish_many("stopped", [b"a", b"b", b"c"])
        assert consume_blocking(mq, "stopped", handler, prefetch=3, wait_s=0.2, stop=stop) == 1
        assert seen == [b"a"]
        stats = mq.stats("stopped")["queues"]["stopped"]
        assert (stats["acked"], stats["ready"], stats["leased"]) == (1, 2, 0)


def test_an_async_handler_is_refused_with_what_to_use(broker: BrokerProcess) -> None:
    async def handler(msg: Message) -> None:
        pass

    with (Client.connect(broker.url) as mq,
          pytest.raises(TypeError, match=r"consume\(\) with an AsyncClient")):
        consume_blocking(mq, "jobs", handler)


def test_the_run_waits_for_messages_until_it_has_handled_enough(broker: BrokerProcess) -> None:
    with Client.connect(broker.url) as mq, Client.connect(broker.url) as producer:
        later = threading.Timer(0.3, lambda: producer.publish_many("later", [b"1", b"2"]))
        later.start()
        got: list[bytes] = []
        assert consume_blocking(mq, "later", lambda m: got.append(m.body), prefetch=5, wait_s=0.2,
                                max_messages=2) == 2
        later.join()
        assert got == [b"1", b"2"]


def test_threads_may_share_one_client(broker: BrokerProcess) -> None:
    ids: list[list[int]] = [[] for _ in range(4)]

    def publisher(n: int) -> None:
        for i in range(50):
            ids[n].append(mq.publish("shared", f"{n}-{i}"))
            mq.ping()

    with Client.connect(broker.url) as mq:
        mq.hello("sharer", heartbeat_s=0.1)  # and the heartbeat thread on the same socket
        threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        every = [i for some in ids for i in some]
        assert len(every) == len(set(every)) == 200  # each call got its own reply
        assert mq.stats("shared")["queues"]["shared"]["ready"] == 200
