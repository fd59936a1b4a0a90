"""The blocking client with `reconnect=True` against real broker processes: a broker SIGKILLed
and restarted on the same port under a running `consume_blocking` loses no message; a dropped
connection resumes the session with its leases; a call the drop caught in flight says its
outcome is unknown; and reconnecting gives up after `reconnect_timeout_s`."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mq_client import Client, ConnectionLost, Message, OutcomeUnknown, consume_blocking

from tests.harness import BrokerProcess, free_port, wait_until

JOBS = 40


@pytest.fixture
def on_port(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker on a fixed port, so that a restart comes back where the client redials."""
    broker = BrokerProcess(tmp_path / "mq.db", "--port", str(free_port()))
    with broker:
        yield broker


def _all_acked(broker: BrokerProcess) -> bool:
    """No message of the queue is left: each is acked (counters start again with the broker)."""
    with Client.connect(broker.url) as c:
        q = c.stats("jobs")["queues"]["jobs"]
        return q["ready"] == q["leased"] == q["delayed"] == 0


def test_a_broker_killed_and_restarted_under_a_blocking_consumer_loses_no_message(
        on_port: BrokerProcess) -> None:
    with Client.connect(on_port.url) as producer:
        producer.publish_many("jobs", [str(i) for i in range(JOBS)])
    seen: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def handler(msg: Message) -> None:
        seen.append(msg.body.decode())
        stop.wait(0.02)  # some work, so the kill lands in a handler or a call now and then

    def worker(mq: Client) -> None:
        try:
            consume_blocking(mq, "jobs", handler, prefetch=4, lease_s=5, wait_s=0.3, stop=stop)
        except BaseException as exc:
            failures.append(exc)

    with Client.connect(on_port.url, reconnect=True, reconnect_timeout_s=20) as mq:
        first = mq.hello("cook", heartbeat_s=0.5)
        mq.join("jobs", "kitchen", prefetch=4)
        run = threading.Thread(target=worker, args=(mq,))
        run.start()
        try:
            wait_until(lambda: len(seen) >= 10, "the worker handled 10 messages")
            on_port.kill()
            on_port.start()
            wait_until(lambda: _all_acked(on_port),
                       lambda: f"every message was acked; handled {sorted(set(seen))}",
                       timeout_s=30, interval_s=0.1)
        finally:
            stop.set()
            run.join(30)
        assert not failures
        assert set(seen) == {str(i) for i in range(JOBS)}  # at least once each, none lost
        assert mq.reconnects >= 1
        assert mq.session is not None and not mq.session.resumed and mq.session.token != first.token
        members = mq.stats("jobs")["queues"]["jobs"]["group"]["members"]
        assert members["cook"]["prefetch"] == 4  # the new session joined the group again


def test_a_dropped_connection_resumes_the_session_with_its_leases(on_port: BrokerProcess) -> None:
    with Client.connect(on_port.url, reconnect=True) as mq:
        first = mq.hello("roamer", heartbeat_s=0.3)
        mq.publish("jobs", b"focaccia")
        msg = mq.lease("jobs")
        assert msg is not None
        mq._link.sock.shutdown(socket.SHUT_RDWR)  # the network drops it; the broker starts grace_s
        mq.ack(msg)  # on a new connection, as the same session: the lease survived
        assert mq.reconnects == 1
        assert mq.session is not None
        assert (mq.session.token, mq.session.resumed) == (first.token, True)
        assert mq.session.heartbeat_s == 0.3
        stats = mq.stats("jobs")
        assert (stats["queues"]["jobs"]["acked"], stats["server"]["sessions"]) == (1, 1)


def _unread_by_broker(port: int, client_port: int) -> int:
    """Bytes the broker's socket for this client holds unread (Linux /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, remote, queues = (line.split()[i] for i in (1, 2, 4))
            ports = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16))
            if ports == (port, client_port):
                return int(queues.split(":")[1], 16)
    return 0


@pytest.mark.parametrize("dedup", [False, True], ids=["plain", "dedup"])
def test_a_publish_the_drop_caught_in_flight_says_its_outcome_is_unknown(
        on_port: BrokerProcess, dedup: bool) -> None:
    with Client.connect(on_port.url, reconnect=True) as mq:
        mq.ping()
        assert on_port.proc is not None
        on_port.proc.send_signal(signal.SIGSTOP)  # it reads nothing more, so it answers nothing
        outcome: list[BaseException] = []

        def publish() -> None:
            try:
                if dedup:
                    mq.publish_dedup("jobs", b"order 7", "order-7")
                else:
                    mq.publish("jobs", b"order 7")
            except BaseException as exc:
                outcome.append(exc)

        sender = threading.Thread(target=publish)
        sender.start()
        client_port = mq._link.sock.getsockname()[1]
        wait_until(lambda: _unread_by_broker(on_port.port, client_port),
                   "the publish reached the broker")
        on_port.kill()  # while it holds the publish unread
        sender.join(10)
        (error,) = outcome
        assert isinstance(error, OutcomeUnknown) and isinstance(error, ConnectionLost)
        assert error.safe_to_retry is dedup
        assert "publish_dedup" in str(error) if not dedup else "safe" in str(error)
        on_port.start()
        result = mq.publish_dedup("jobs", b"order 7", "order-7")  # the next call reconnects
        again = mq.publish_dedup("jobs", b"order 7", "order-7")
        assert (result.duplicate, again.duplicate, again.msg_id) == (False, True, result.msg_id)
        assert mq.stats("jobs")["queues"]["jobs"]["ready"] == 1


def test_reconnecting_gives_up_after_reconnect_timeout_s(on_port: BrokerProcess) -> None:
    with Client.connect(on_port.url, reconnect=True, reconnect_timeout_s=0.5) as mq:
        mq.publish("jobs", b"1")
        on_port.kill()  # and never back
        gave_up = r"could not reconnect .* within reconnect_timeout_s=0\.5"
        with pytest.raises(ConnectionLost, match=gave_up):
            consume_blocking(mq, "jobs", lambda m: None, wait_s=0.2)
        assert mq.closed and not mq.will_reconnect
        with pytest.raises(ConnectionLost, match="could not reconnect"):
            mq.ping()  # every later call says so too
