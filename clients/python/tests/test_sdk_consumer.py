"""The consumer loop, driven by an in-memory stand-in for AsyncClient (no sockets)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import cast

import pytest

from mq_client import AsyncClient, Message, consume
from mq_client.errors import BadRequest, ConnectionLost, LeaseLost
from mq_client.message import AckFailure, AckResult
from mq_client.request import ReceiptLike


def _msg(i: int) -> Message:
    return Message(f"{i}.1", i, "jobs", 1, str(i).encode(), None, 0.0)


class StubClient:
    """Hands out queued messages and records gets, acks and nacks; an empty queue idles briefly."""

    def __init__(self, count: int, fail_lease_after: int | None = None) -> None:
        self.ready = [_msg(i) for i in range(1, count + 1)]
        self.leased: list[str] = []
        self.gets: list[int] = []  # the `max` of each get
        self.acked: list[str] = []
        self.ack_requests: list[list[str]] = []  # receipts of each ack or batch ack, as sent
        self.nacked: list[str] = []
        self.fail_lease_after = fail_lease_after
        self.ack_errors: list[Exception] = []  # raised by the next acks (single or batch), one each
        self.ack_failures: dict[str, AckFailure] = {}  # receipts a batch ack reports as failed
        self.will_reconnect = False

    async def get(
        self, queue: str, lease_s: float | None = None, wait_s: float | None = None, max: int = 1
    ) -> list[Message]:
        await asyncio.sleep(0)
        self.gets.append(max)
        if self.fail_lease_after is not None and len(self.leased) >= self.fail_lease_after:
            if self.will_reconnect:
                self.fail_lease_after = None  # the next connection works
            raise ConnectionLost("the broker closed the connection")
        if not self.ready:
            await asyncio.sleep(0.01)  # a long-poll that came back empty
            return []
        msgs, self.ready = self.ready[:max], self.ready[max:]
        self.leased.extend(m.receipt for m in msgs)
        return msgs

    async def ack(self, receipt: ReceiptLike) -> None:
        await asyncio.sleep(0)
        self.ack_requests.append([_receipt(receipt)])
        if self.ack_errors:
            raise self.ack_errors.pop(0)
        self.acked.append(_receipt(receipt))

    async def ack_many(self, receipts: Iterable[ReceiptLike]) -> AckResult:
        await asyncio.sleep(0)
        batch = [_receipt(r) for r in receipts]
        self.ack_requests.append(batch)
        if self.ack_errors:
            raise self.ack_errors.pop(0)
        failed = tuple(self.ack_failures[r] for r in batch if r in self.ack_failures)
        self.acked.extend(r for r in batch if r not in self.ack_failures)
        return AckResult(len(batch) - len(failed), failed)

    async def nack(self, receipt: ReceiptLike, delay_s: float | None = None, error: str | None = None) -> None:
        await asyncio.sleep(0)
        self.nacked.append(_receipt(receipt))


def _receipt(receipt: ReceiptLike) -> str:
    return receipt.receipt if isinstance(receipt, Message) else receipt


def _client(stub: StubClient) -> AsyncClient:
    return cast(AsyncClient, stub)


def _run_consume(stub: StubClient, handler: object, **kwargs: object) -> int:
    async def main() -> int:
        n = await consume(_client(stub), "jobs", handler, **kwargs)  # type: ignore[arg-type]
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no worker outlives consume
        return n

    return asyncio.run(main())


def test_async_handler_acks_until_max_messages() -> None:
    stub = StubClient(10)
    seen: list[bytes] = []

    async def handler(msg: Message) -> None:
        seen.append(msg.body)

    assert _run_consume(stub, handler, max_messages=4) == 4
    assert seen == [b"1", b"2", b"3", b"4"]
    assert stub.acked == ["1.1", "2.1", "3.1", "4.1"]
    assert stub.leased == stub.acked  # nothing leased beyond the budget


def test_sync_handler_runs_in_a_thread() -> None:
    stub = StubClient(2)
    threads: list[int] = []

    def handler(msg: Message) -> None:
        threads.append(threading.get_ident())

    assert _run_consume(stub, handler, max_messages=2) == 2
    assert threading.get_ident() not in threads
    assert stub.acked == ["1.1", "2.1"]


def test_failing_handler_nacks_logs_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stub = StubClient(3)

    async def handler(msg: Message) -> None:
        if msg.msg_id == 2:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="mq_client.consumer"):
        assert _run_consume(stub, handler, max_messages=3) == 3
    assert stub.acked == ["1.1", "3.1"]
    assert stub.nacked == ["2.1"]
    assert "boom" in caplog.text and "2.1" in caplog.text


def test_concurrency_never_leases_beyond_max_messages() -> None:
    stub = StubClient(50)
    running = 0
    peak = 0

    async def handler(msg: Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1

    assert _run_consume(stub, handler, concurrency=4, max_messages=10) == 10
    assert len(stub.leased) == 10 and sorted(stub.acked) == sorted(stub.leased)
    assert peak == 4


def test_stop_event_ends_consume() -> None:
    stub = StubClient(100)

    async def main() -> int:
        stop = asyncio.Event()

        async def handler(msg: Message) -> None:
            if msg.msg_id == 3:
                stop.set()

        return await consume(_client(stub), "jobs", handler, stop=stop, concurrency=2)

    handled = asyncio.run(main())
    assert 3 <= handled <= 4  # the other worker may finish the message it holds
    assert len(stub.leased) == handled + len(stub.nacked)


def test_stop_while_idle_returns() -> None:
    stub = StubClient(0)

    async def main() -> int:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await consume(_client(stub), "jobs", lambda m: None, stop=stop, concurrency=3)

    assert asyncio.run(main()) == 0


def test_connection_lost_stops_every_worker_and_is_raised_plainly() -> None:
    stub = StubClient(100, fail_lease_after=5)

    async def handler(msg: Message) -> None:
        await asyncio.sleep(0.001)

    with pytest.raises(ConnectionLost):
        _run_consume(stub, handler, concurrency=3)


def test_reconnecting_client_polls_again_after_a_lost_connection(caplog: pytest.LogCaptureFixture) -> None:
    stub = StubClient(10, fail_lease_after=3)
    stub.will_reconnect = True
    with caplog.at_level(logging.WARNING, logger="mq_client.consumer"):
        assert _run_consume(stub, lambda m: None, max_messages=10) == 10
    assert stub.acked == [f"{i}.1" for i in range(1, 11)]
    assert "polling again" in caplog.text


def test_reconnecting_client_repeats_an_ack_the_connection_lost() -> None:
    stub = StubClient(2)
    stub.will_reconnect = True
    stub.ack_errors = [ConnectionLost("connection lost while sending"), ConnectionLost("not reconnected yet")]
    assert _run_consume(stub, lambda m: None, max_messages=2) == 2
    assert stub.acked == ["1.1", "2.1"]


def test_ack_lost_without_reconnect_is_raised() -> None:
    stub = StubClient(2)
    stub.ack_errors = [ConnectionLost("connection lost while sending")]
    with pytest.raises(ConnectionLost):
        _run_consume(stub, lambda m: None, max_messages=2)
    assert stub.acked == []


def test_lost_lease_on_ack_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    stub = StubClient(2)
    stub.ack_errors = [LeaseLost("LEASE_LOST", "lease 1.1 is no longer held", False)]
    with caplog.at_level(logging.WARNING, logger="mq_client.consumer"):
        assert _run_consume(stub, lambda m: None, max_messages=2) == 2
    assert "no longer held" in caplog.text


def test_cancelling_consume_cancels_its_workers() -> None:
    stub = StubClient(0)

    async def main() -> None:
        task = asyncio.create_task(consume(_client(stub), "jobs", lambda m: None, concurrency=3))
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_zero_max_messages_does_nothing() -> None:
    stub = StubClient(3)
    assert _run_consume(stub, lambda m: None, max_messages=0) == 0
    assert stub.leased == []


@pytest.mark.parametrize(
    "kwargs", [{"concurrency": 0}, {"max_messages": -1}, {"prefetch": 0}, {"prefetch": 1001}]
)
def test_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        _run_consume(StubClient(0), lambda m: None, **kwargs)


# -- prefetch: a batch per get, one ack for the batch ---------------------------------------


def test_prefetch_acks_each_batch_with_one_request() -> None:
    stub = StubClient(25)
    seen: list[int] = []

    async def handler(msg: Message) -> None:
        seen.append(msg.msg_id)

    assert _run_consume(stub, handler, prefetch=10, max_messages=25) == 25
    assert seen == list(range(1, 26))  # one worker handles its batch in order
    assert stub.gets == [10, 10, 5]  # the last get asks only for what the budget allows
    assert [len(r) for r in stub.ack_requests] == [10, 10, 5]
    assert stub.acked == [f"{i}.1" for i in range(1, 26)]


def test_prefetch_acks_only_after_the_handler_succeeded() -> None:
    stub = StubClient(6)
    acked_when_handled: list[list[str]] = []

    async def handler(msg: Message) -> None:
        acked_when_handled.append(list(stub.acked))
        if msg.msg_id in (2, 5):
            raise RuntimeError("boom")

    assert _run_consume(stub, handler, prefetch=3, max_messages=6) == 6
    assert acked_when_handled[:3] == [[], [], []]  # nothing of a batch is acked while it runs
    assert stub.nacked == ["2.1", "5.1"]
    assert stub.ack_requests == [["1.1", "3.1"], ["4.1", "6.1"]]


def test_prefetch_a_lone_success_uses_the_single_ack() -> None:
    stub = StubClient(2)

    async def handler(msg: Message) -> None:
        if msg.msg_id == 1:
            raise RuntimeError("boom")

    assert _run_consume(stub, handler, prefetch=2, max_messages=2) == 2
    assert stub.ack_requests == [["2.1"]] and stub.nacked == ["1.1"]


def test_prefetch_stop_nacks_what_was_not_started() -> None:
    stub = StubClient(10)

    async def main() -> int:
        stop = asyncio.Event()

        async def handler(msg: Message) -> None:
            if msg.msg_id == 3:
                stop.set()

        return await consume(_client(stub), "jobs", handler, stop=stop, prefetch=10)

    assert asyncio.run(main()) == 3
    assert stub.acked == ["1.1", "2.1", "3.1"]
    assert stub.nacked == [f"{i}.1" for i in range(4, 11)]


def test_prefetch_with_concurrency_stays_within_max_messages() -> None:
    stub = StubClient(100)

    async def handler(msg: Message) -> None:
        await asyncio.sleep(0.001)

    assert _run_consume(stub, handler, concurrency=3, prefetch=4, max_messages=10) == 10
    assert len(stub.leased) == 10 and sorted(stub.acked) == sorted(stub.leased)


def test_prefetch_lost_leases_in_a_batch_ack_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    stub = StubClient(3)
    stub.ack_failures["2.1"] = AckFailure("2.1", "LEASE_LOST", "lease 2.1 is no longer held")
    with caplog.at_level(logging.WARNING, logger="mq_client.consumer"):
        assert _run_consume(stub, lambda m: None, prefetch=3, max_messages=3) == 3
    assert stub.acked == ["1.1", "3.1"]
    assert "2.1" in caplog.text and "no longer held" in caplog.text


def test_prefetch_other_batch_ack_failures_are_raised() -> None:
    stub = StubClient(3)
    stub.ack_failures["2.1"] = AckFailure("2.1", "BAD_REQUEST", "bad receipt")
    with pytest.raises(BadRequest):
        _run_consume(stub, lambda m: None, prefetch=3, max_messages=3)


def test_prefetch_reconnecting_client_repeats_a_batch_ack_the_connection_lost() -> None:
    stub = StubClient(4)
    stub.will_reconnect = True
    stub.ack_errors = [ConnectionLost("connection lost while sending")]
    assert _run_consume(stub, lambda m: None, prefetch=4, max_messages=4) == 4
    assert stub.ack_requests == [["1.1", "2.1", "3.1", "4.1"]] * 2
    assert stub.acked == ["1.1", "2.1", "3.1", "4.1"]
