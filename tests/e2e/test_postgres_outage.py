"""The Postgres server itself killed (kill -9 of the postmaster and every backend) while a
producer publishes with confirmations: requests meanwhile get STORE_UNAVAILABLE and are not
confirmed; once the server is restarted the same broker process, never restarted, confirms
again; and every message it ever confirmed is in the log, none twice."""

from __future__ import annotations

import asyncio
import time

from mq_client import AsyncClient
from mq_client.errors import StoreUnavailable

from tests.harness import BinarySession, BrokerProcess, TextSession, wait_until
from tests.pg import REFUSE_POISON, PgServer, query

BEFORE, AFTER = 300, 300  # confirmed publishes before the kill and after the restart
MAX_ATTEMPTS = 20_000  # bounds the loop whatever happens
BACK_WITHIN_S = 30.0


def test_a_killed_database_is_survived_without_a_broker_restart(pg_server: PgServer,
                                                                pg_url: str) -> None:
    confirmed: list[int] = []
    confirmed_while_down: list[int] = []
    refused = 0

    async def publish_until(count: int, mq: AsyncClient, deadline: float) -> None:
        nonlocal refused
        for attempt in range(MAX_ATTEMPTS):
            if len(confirmed) >= count or time.monotonic() > deadline:
                return
            try:
                confirmed.append(await mq.publish("orders", b"order %d" % attempt))
            except StoreUnavailable:
                refused += 1
                await asyncio.sleep(0.05)

    async def refused_while_down(mq: AsyncClient) -> None:
        """Publish until one is refused: none may be confirmed while the database is dead."""
        nonlocal refused
        deadline = time.monotonic() + BACK_WITHIN_S
        while not refused and time.monotonic() < deadline:
            try:
                confirmed_while_down.append(await mq.publish("orders", b"while down"))
            except StoreUnavailable:
                refused += 1

    async def scenario(url: str) -> list[int]:
        async with AsyncClient.connect(url) as mq:
            await publish_until(BEFORE, mq, time.monotonic() + BACK_WITHIN_S)
            pg_server.kill()  # no confirmation is in flight: each publish awaits its reply
            await refused_while_down(mq)
            pg_server.start()
            await publish_until(BEFORE + AFTER, mq, time.monotonic() + BACK_WITHIN_S)
            got: list[int] = []
            while batch := await mq.get("orders", max=1000):
                got += [m.msg_id for m in batch]
                await asyncio.gather(*(mq.ack(m) for m in batch))
            return got

    with BrokerProcess(pg_url) as broker:
        assert broker.proc is not None
        pid = broker.proc.pid
        stored = asyncio.run(scenario(broker.url))
        assert broker.proc.pid == pid and broker.proc.poll() is None  # never restarted
        assert confirmed_while_down == [], "".join(broker.log)[-3000:]
        assert broker.logged("cannot write the log"), "".join(broker.log)[-3000:]
    assert refused > 0, "no publish was refused while the database was down"
    assert len(confirmed) == BEFORE + AFTER
    assert len(stored) == len(set(stored))
    assert set(confirmed) <= set(stored)


def test_a_batch_the_database_refuses_for_its_data_is_answered_internal_and_blocks_nothing(
        pg_url: str) -> None:
    with BrokerProcess(pg_url) as broker:
        for sql in REFUSE_POISON:
            query(pg_url, sql)
        producer = TextSession(broker.port)
        assert producer.ask("PUB q poison") == "-ERR INTERNAL internal error; see the broker log"
        assert producer.ask("PUB q fine").startswith("+OK")  # the next batch is written
        assert TextSession(broker.port).ask("PUB q also").startswith("+OK")
        # A publish made while the refused batch is being written waits for its own commit.
        pipelined = BinarySession(broker.port)
        pipelined.send({"op": "pub", "rid": 1, "queue": "q", "body": b"slow poison"})
        time.sleep(0.3)  # the database takes a second to refuse it
        pipelined.send({"op": "pub", "rid": 2, "queue": "q", "body": b"later"})
        assert [(r["rid"], r["ok"], r.get("code")) for r in (pipelined.read(), pipelined.read())
                ] == [(1, False, "INTERNAL"), (2, True, None)]
        wait_until(lambda: broker.logged("refused batch", "not written again"), "logged")
        assert broker.logged("Traceback")
        assert not broker.logged("cannot write the log")  # no outage
    assert query(pg_url, "SELECT body FROM log WHERE kind = 0 ORDER BY seq") == [
        (b"fine",), (b"also",), (b"later",)]
