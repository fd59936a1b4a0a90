"""Bad input costs only the connection that sent it: the broker answers or closes that one
connection, keeps serving the others, and does not buffer what it will not accept."""

from __future__ import annotations

import socket
import struct
import time

from tests.harness import BinarySession, BrokerProcess, TextSession, frame


def assert_healthy(port: int) -> None:
    """A second, well-behaved client still gets served."""
    t = TextSession(port)
    assert t.ask("PUB health ok") .startswith("+OK ")
    assert t.ask("PING") == "+PONG"
    t.close()


def test_huge_length_prefix_is_refused_before_allocation(broker: BrokerProcess) -> None:
    rss_before = broker.rss_bytes()
    s = BinarySession(broker.port)
    s.sock.sendall(struct.pack(">I", 2 * 1024**3) + b"\x00" * 1000)
    reply = s.read()
    assert reply["ok"] is False
    assert reply["code"] == "FRAME_TOO_LARGE"
    assert reply["fatal"] is True
    assert s.closed_by_peer()
    assert_healthy(broker.port)
    assert broker.rss_bytes() - rss_before < 20 * 1024**2


def test_garbage_payload_gets_bad_frame_and_connection_survives(broker: BrokerProcess) -> None:
    s = BinarySession(broker.port)
    s.sock.sendall(struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
    assert s.read()["code"] == "BAD_FRAME"
    s.sock.sendall(struct.pack(">I", 1) + b"\x07")  # valid msgpack, but an int, not a map
    assert s.read()["code"] == "BAD_FRAME"
    s.send({"op": "ping", "rid": 9})
    assert s.read() == {"rid": 9, "ok": True}
    assert_healthy(broker.port)


def test_random_bytes_close_or_error_only_that_connection(broker: BrokerProcess) -> None:
    s = BinarySession(broker.port)
    s.sock.sendall(bytes(range(256)) * 4)  # starts with 0x00: binary mode, lengths are garbage
    s.sock.settimeout(1)  # a reply or a close comes at once; silence (a frame awaited) is fine
    try:
        while s.sock.recv(65536):
            pass
    except (TimeoutError, ConnectionResetError):
        pass
    assert_healthy(broker.port)


def test_unknown_op_and_bad_fields(broker: BrokerProcess) -> None:
    s = BinarySession(broker.port)
    s.send({"op": "teleport", "rid": 1})
    assert s.read() == {"rid": 1, "ok": False, "code": "UNKNOWN_OP",
                        "message": "unknown op 'teleport'; see protocol.md 2.3", "fatal": False}
    s.send({"op": "get", "rid": 2, "queue": "q", "max": 0})
    assert s.read()["code"] == "BAD_REQUEST"
    s.send({"op": "pub", "rid": 3, "queue": "q", "body": 17})
    assert s.read()["code"] == "BAD_REQUEST"
    s.send({"op": "pub", "rid": 4, "queue": "q", "body": b"fine"})
    assert s.read() == {"rid": 4, "ok": True, "msg_id": 1}


def test_truncated_frame_stores_nothing(broker: BrokerProcess) -> None:
    whole = frame({"op": "pub", "rid": 1, "queue": "cut", "body": b"x" * 100})
    s = BinarySession(broker.port)
    s.sock.sendall(whole[: len(whole) // 2])
    s.close()
    t = TextSession(broker.port)
    assert t.ask("GET cut") == "+EMPTY"
    assert_healthy(broker.port)


def test_ten_megabyte_text_line(broker: BrokerProcess) -> None:
    rss_before = broker.rss_bytes()
    t = TextSession(broker.port)
    t.sock.sendall(b"PUB big " + b"y" * (10 * 1024 * 1024) + b"\r\n")
    assert t.reply()[-1].startswith("-ERR LINE_TOO_LONG ")
    assert t.ask("PING") == "+PONG"  # the rest of the long line was discarded, not parsed
    assert t.ask("GET big") == "+EMPTY"
    assert_healthy(broker.port)
    assert broker.rss_bytes() - rss_before < 30 * 1024**2


def test_half_typed_line_then_disconnect(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    t.sock.sendall(b"PUB half typed")  # no line end
    t.close()
    t2 = TextSession(broker.port)
    assert t2.ask("GET half") == "+EMPTY"


def test_lines_piled_behind_a_waiting_get_are_bounded(broker: BrokerProcess) -> None:
    """A text client whose GET waits and who keeps typing is read no further once the held
    lines reach max_backlog_commands: its bytes stay in the socket, not in the broker."""
    rss_before = broker.rss_bytes()
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    s.sendall(b"GET nothing 30 3\r\n")
    s.setblocking(False)
    chunk = b"PING\r\n" * 10_000
    sent, deadline = 0, time.monotonic() + 2.0
    while sent < 40 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    # The kernel's socket buffers take a few MB; without the bound the broker reads on (15 MB
    # in 2 s here) and its memory grows with every held line.
    assert sent < 8 * 1024 * 1024
    assert broker.rss_bytes() - rss_before < 10 * 1024**2
    assert_healthy(broker.port)
    s.close()


def test_waiting_gets_per_connection_are_bounded(broker: BrokerProcess) -> None:
    s = BinarySession(broker.port)
    s.sock.sendall(b"".join(frame({"op": "get", "rid": i, "queue": "idle", "wait_s": 30})
                            for i in range(1_001)))
    reply = s.read()  # the first reply: the 1,001st GET is refused at once
    assert (reply["rid"], reply["code"]) == (1_000, "BAD_REQUEST")
    assert "max_waiting_gets=1000" in str(reply["message"])
    s.send({"op": "ping", "rid": 5_000})
    assert s.read() == {"rid": 5_000, "ok": True}
    assert_healthy(broker.port)


def test_odd_receipts_are_bad_requests_not_closed_connections(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    assert t.ask("ACK \u00b2.1").startswith("-ERR BAD_REQUEST ")  # a digit int() refuses
    assert t.ask("ACK \u0661.\u0661").startswith("-ERR BAD_REQUEST ")  # non-ASCII digits
    assert t.ask("ACK " + "1" * 5000 + ".1").startswith("-ERR BAD_REQUEST ")
    s = BinarySession(broker.port)
    s.send({"op": "ack", "rid": 1, "receipt": "\u00b2.1"})
    assert s.read()["code"] == "BAD_REQUEST"
    s.send({"op": "ping", "rid": 2})
    assert s.read() == {"rid": 2, "ok": True}
