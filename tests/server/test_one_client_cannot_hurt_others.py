"""No client can stall or bloat the others: every buffer a client can grow in the broker is
bounded (protocol.md section 7), and a reply never waits for work that is not its own.

Real broker in this process (so the tests can look at what it holds), real loopback sockets.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from mq.server.connection import Connection
from tests.harness import BinarySession, TextSession, frame
from tests.inprocess import InProcessBroker, broker_on_fake_time

NO_REPLY_WAIT_S = 0.2  # how long to listen for a reply that must not come (real seconds)


def nothing_to_read(sock: socket.socket) -> bool:
    sock.settimeout(NO_REPLY_WAIT_S)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(10)
    return False


def connection_of(broker: InProcessBroker, client: BinarySession) -> Connection:
    """The broker's side of `client`'s connection."""
    port = client.sock.getsockname()[1]
    found = [c for c in broker.server.rounds.connections if c.peer.endswith(f":{port}")]
    assert len(found) == 1
    return found[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "mq.db"


@pytest.fixture
def broker(db: Path) -> Iterator[InProcessBroker]:
    with broker_on_fake_time(db) as b:
        yield b


def test_a_reply_that_confirms_nothing_does_not_wait_for_another_clients_commit(
        broker: InProcessBroker) -> None:
    producer, other = TextSession(broker.port), TextSession(broker.port)
    assert other.ask("PING") == "+PONG"
    with broker.writer_held():  # the broker's next commit waits until the end of this block
        producer.send("PUB q held")
        assert nothing_to_read(producer.sock)  # not confirmed: its commit cannot happen yet
        assert other.ask("PING") == "+PONG"  # answered at once all the same
        other.send("STATS q")
        assert other.reply()[-1] == "+OK 1 queues"
    assert producer.reply() == ["+OK 1"]


def test_a_producer_that_never_reads_is_paused_with_bounded_replies(db: Path) -> None:
    bound = 50
    with broker_on_fake_time(db, max_unconfirmed_replies=bound,
                             write_buffer_high_bytes=16 * 1024) as broker:
        producer = BinarySession(broker.port)
        sent = 20_000
        pubs = b"".join(frame({"op": "pub", "queue": "q", "body": b"x" * 100, "rid": i})
                        for i in range(sent))
        sender = threading.Thread(target=producer.sock.sendall, args=(pubs,), daemon=True)
        sender.start()
        other = TextSession(broker.port)
        assert other.ask("PING") == "+PONG"
        conn = connection_of(broker, producer)
        # The producer reads nothing: the broker holds at most a socket's worth of its requests
        # and a bounded amount of its replies; the rest waits in the producer's own socket.
        assert conn.unsent_bytes <= 64 * 1024
        assert len(conn.backlog) <= broker.server.config.max_backlog_commands
        got = [producer.read() for _ in range(sent)]
        assert [r["rid"] for r in got] == list(range(sent))
        assert all(r["ok"] for r in got)
        sender.join(10)


def test_many_big_peeks_cost_one_replys_memory_until_read(db: Path) -> None:
    body = b"p" * 1_000_000
    with broker_on_fake_time(db, write_buffer_high_bytes=2_000_000) as broker:
        client = BinarySession(broker.port)
        client.sock.sendall(frame({"op": "pub", "queue": "big", "body": body, "rid": 0}))
        assert client.read()["ok"]
        client.sock.sendall(b"".join(frame({"op": "peek", "queue": "big", "rid": i})
                                for i in range(1, 101)))
        conn = connection_of(broker, client)
        for _ in range(10):  # while the client reads nothing, a second or so of real time
            assert not nothing_to_read(client.sock)
            # replies stop once the buffer is full: the rest wait as commands, not as bytes
            assert conn.unread_bytes <= 2_000_000 + 2 * len(body)
        assert len(conn.backlog) > 50
        replies = [client.read() for _ in range(100)]
        assert [r["rid"] for r in replies] == list(range(1, 101))
        assert all(len(r["msgs"][0]["body"]) == len(body) for r in replies)


def test_every_pipelined_history_request_gets_one_reply(broker: InProcessBroker) -> None:
    client = BinarySession(broker.port)
    client.sock.sendall(frame({"op": "pub", "queue": "q", "body": b"x", "rid": 0}))
    assert client.read()["msg_id"] == 1
    for start in range(1, 101, 5):  # 5 per round, then 100 more in one go
        client.sock.sendall(b"".join(frame({"op": "history", "msg_id": 1, "rid": i})
                                for i in range(start, start + 5)))
    client.sock.sendall(b"".join(frame({"op": "history", "msg_id": 1, "rid": i})
                            for i in range(101, 201)))
    replies = [client.read() for _ in range(200)]
    assert sorted(r["rid"] for r in replies) == list(range(1, 201))
    assert all(r["events"][0]["event"] == "published" for r in replies)
    assert nothing_to_read(client.sock)


@pytest.mark.parametrize("mode", ["text", "binary"])
def test_a_half_closed_client_gets_every_reply(broker: InProcessBroker, mode: str) -> None:
    client = BinarySession(broker.port)
    if mode == "text":
        client.sock.sendall(b"".join(b"PUB q m%d\r\n" % i for i in range(20)) + b"GET q 30 5\r\n")
    else:
        client.sock.sendall(b"".join(frame({"op": "pub", "queue": "q", "body": b"m", "rid": i})
                                for i in range(20)))
        client.sock.sendall(frame({"op": "get", "queue": "q", "wait_s": 5, "rid": 20}))
    client.sock.shutdown(socket.SHUT_WR)  # as `printf ... | nc` does after its last line
    data = b""
    while chunk := client.sock.recv(65536):
        data += chunk
    if mode == "text":
        assert data.split(b"\r\n")[:21] == [b"+OK %d" % i for i in range(1, 21)] + [
            b"MSG 1.1 q 1 m0"]
    else:
        replies = []
        while data:
            size = struct.unpack(">I", data[:4])[0]
            replies.append(msgpack.unpackb(data[4:4 + size], raw=False))
            data = data[4 + size:]
        assert [r["msg_id"] for r in replies[:20]] == list(range(1, 21))
        assert replies[20]["msgs"][0]["receipt"] == "1.1"


def test_a_subscriber_that_never_reads_is_not_pushed_more(db: Path) -> None:
    with broker_on_fake_time(db, write_buffer_high_bytes=64 * 1024) as broker:
        producer = TextSession(broker.port)
        for _ in range(100):
            producer.send("PUB jobs " + "j" * 10_000)
        for _ in range(100):
            assert producer.reply()[-1].startswith("+OK")
        lazy = BinarySession(broker.port)
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.sock.sendall(frame({"op": "sub", "queue": "jobs", "prefetch": 10, "lease_s": 1,
                            "rid": 1}))
        push_bytes = 10 * 10_100
        for _ in range(30):  # every lease expires and comes back, again and again
            broker.advance(1.01)
            conn = connection_of(broker, lazy)
            assert conn.unread_bytes < 64 * 1024 + 2 * push_bytes
        assert producer.ask("PING") == "+PONG"


def test_a_monitor_that_never_reads_loses_events_not_memory(db: Path) -> None:
    with broker_on_fake_time(db, write_buffer_high_bytes=32 * 1024) as broker:
        watcher = BinarySession(broker.port)
        watcher.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        watcher.sock.sendall(frame({"op": "monitor", "rid": 1}))
        producer = BinarySession(broker.port)
        batch = frame({"op": "mpub", "queue": "q", "bodies": [b"e"] * 1000, "rid": 2})
        for _ in range(20):
            producer.sock.sendall(batch)
            assert producer.read()["ok"]
        conn = connection_of(broker, watcher)
        assert conn.unsent_bytes < 64 * 1024
        assert broker.server.rounds.monitor_events_dropped > 0


def test_unfinished_frames_of_all_clients_are_bounded(db: Path) -> None:
    mib = 1024 * 1024
    with broker_on_fake_time(db, max_frame_bytes=mib, max_buffered_input_bytes=2 * mib) as broker:
        header = struct.pack(">I", mib - 10)
        slow = [BinarySession(broker.port) for _ in range(3)]
        for sock in slow[:2]:
            sock.sock.sendall(header + b"\x00" * (900 * 1024))  # most of a frame, never finished
        TextSession(broker.port).ask("PING")  # the first two are buffered by now
        slow[2].sock.sendall(header + b"\x00" * (900 * 1024))
        reply = slow[2].read()
        assert reply["code"] == "OVERLOADED" and reply["fatal"] is True
        assert slow[2].closed_by_peer()
        assert nothing_to_read(slow[0].sock) and nothing_to_read(slow[1].sock)  # not their fault
        assert TextSession(broker.port).ask("PING") == "+PONG"


@pytest.mark.parametrize(("close", "clients"), [("fin", 200), ("reset", 1_100)])
def test_waiting_gets_of_closed_connections_are_let_go(broker: InProcessBroker, close: str,
                                                        clients: int) -> None:
    opened = broker.server.traffic.opened + clients
    for _ in range(clients):
        t = TextSession(broker.port)
        t.send("GET nothing 30 300")
        if close == "reset":  # gone without a FIN: the broker sees no EOF, only the loss
            t.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.close()
    broker.wait_for_connections(0, opened)
    assert broker.server.delivery.waiters.count == 0
    assert broker.server.delivery.waiters.retained <= 1_000
