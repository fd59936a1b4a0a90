"""The asyncio Connection's write path: coalesced writes, flow control, pending bookkeeping."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

from fake_broker import FakeBroker

from mq_client import AsyncClient, ops
from mq_client.codec import DEFAULT_MAX_FRAME_BYTES, encode_frame
from mq_client.connection import COALESCE_BYTES, Connection
from mq_client.url import parse_url


async def _open(broker: FakeBroker) -> tuple[Connection, list[int]]:
    """A connection whose transport records the size of every write."""
    conn = await Connection.open(parse_url(broker.url), connect_timeout_s=1.0, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)
    writes: list[int] = []
    transport: Any = conn._transport
    real_write = transport.write

    def write(data: bytes) -> None:
        writes.append(len(data))
        real_write(data)

    conn._transport = cast(asyncio.WriteTransport, _Recording(transport, write))
    return conn, writes


class _Recording:
    """The transport, with `write` replaced."""

    def __init__(self, transport: Any, write: Any) -> None:
        self._transport = transport
        self.write = write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _run(scenario: Any) -> None:
    async def main() -> None:
        broker = await FakeBroker().start()
        try:
            await scenario(broker)
        finally:
            await broker.stop()

    asyncio.run(main())


def test_requests_made_in_one_turn_go_out_in_two_writes() -> None:
    async def scenario(broker: FakeBroker) -> None:
        conn, writes = await _open(broker)
        try:
            ids = await asyncio.gather(*(conn.call(ops.publish("q", b"x")) for _ in range(100)))
            assert len(ids) == 100
            assert len(writes) == 2  # the first at once, the other 99 joined in the next turn
            assert broker.ops() == ["pub"] * 100
        finally:
            await conn.close()

    _run(scenario)


def test_a_lone_request_is_written_at_once() -> None:
    async def scenario(broker: FakeBroker) -> None:
        conn, writes = await _open(broker)
        try:
            for _ in range(3):
                future = await conn.send(ops.ping())
                assert len(writes) >= 1  # written before the caller even awaits the reply
                await future
            assert len(writes) == 3
        finally:
            await conn.close()

    _run(scenario)


def test_held_frames_are_written_once_they_reach_coalesce_bytes() -> None:
    async def scenario(broker: FakeBroker) -> None:
        conn, writes = await _open(broker)
        request = ops.publish("q", bytes(4096))
        frame_bytes = len(encode_frame(request.to_wire(1)))  # every rid here packs in one byte
        per_write = math.ceil(COALESCE_BYTES / frame_bytes)
        try:
            await asyncio.gather(*(conn.call(request) for _ in range(64)))
            # The first at once; then a write each time the held frames reach COALESCE_BYTES; the
            # rest at the next turn.
            assert writes[0] == frame_bytes
            assert writes[1:] == [per_write * frame_bytes] * (63 // per_write) + [(63 % per_write) * frame_bytes]
            assert broker.ops() == ["pub"] * 64
        finally:
            await conn.close()

    _run(scenario)


def test_answered_and_abandoned_requests_leave_no_pending_entry() -> None:
    async def scenario(broker: FakeBroker) -> None:
        broker.get_delay_s = 0.05
        async with AsyncClient.connect(broker.url) as client:
            conn = await client._link.connection()
            await client.ack_many([f"{i}.1" for i in range(5)])
            waiting = asyncio.create_task(client.get("q", wait_s=1))
            await asyncio.sleep(0.01)
            waiting.cancel()  # its reply still comes, and is dropped
            await asyncio.sleep(0.1)
            assert conn._pending == {}

    _run(scenario)



def test_a_drop_fails_sent_calls_with_outcome_unknown_and_unsent_ones_with_connection_lost() -> None:
    async def main() -> None:
        publishes = [ops.publish("q", b"x"), ops.publish("q", b"x", dedup_id="o-7")]
        expected = sum(len(encode_frame(r.to_wire(rid))) for rid, r in enumerate(publishes, 1))
        arrived = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received = b""
            while len(received) < expected:  # both requests arrive; neither is answered
                received += await reader.read(expected - len(received))
            arrived.set()
            await reader.read()  # until the client goes

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            conn = await Connection.open(parse_url(f"mq://127.0.0.1:{port}"), connect_timeout_s=1.0,
                                         max_frame_bytes=DEFAULT_MAX_FRAME_BYTES)
            sent = [asyncio.ensure_future(conn.call(r)) for r in publishes]
            await asyncio.wait_for(arrived.wait(), 5)
            # In one turn: the first frame goes to the socket at once, the second is held for the
            # joined write of the next turn, which the drop comes before.
            written, held = conn._write(ops.ping()), conn._write(ops.ping())
            conn.abort()
            outcomes = await asyncio.gather(*sent, written, held, return_exceptions=True)
            assert [type(e).__name__ for e in outcomes] == ["OutcomeUnknown"] * 3 + ["ConnectionLost"]
            assert [getattr(e, "safe_to_retry", None) for e in outcomes] == [False, True, True, None]
            assert "pub went out, before its reply" in str(outcomes[0])
        finally:
            server.close()

    asyncio.run(main())
