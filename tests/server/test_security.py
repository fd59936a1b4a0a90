"""Who may do what, over real sockets to real broker processes: AUTH in both modes, per-queue
permissions, refused secrets answered late, SIGHUP reloads, TLS with certificates made here."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trustme
from mq_client import AsyncClient, Client, ConnectionLost, Forbidden, Unauthenticated

from mq.auth.hashing import hash_secret
from mq.auth.permissions import Permission
from mq.auth.users import User, Users, new_grants, save_users
from mq.codec.commands import REGISTRY
from tests.harness import (
    BinarySession,
    BrokerProcess,
    TextSession,
    free_port,
    wait_until,
    wait_until_async,
)

DELAY_S = 0.5  # --auth-failure-delay-s of these brokers


def make_user(name: str, secret: str, **grants: list[str]) -> User:
    pairs = ((Permission(p), g) for p, gs in grants.items() for g in gs)
    return User(name, hash_secret(secret), new_grants(pairs))


EVERYTHING = {p.value: ["*"] for p in Permission}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    save_users(path, Users({
        "root": make_user("root", "r00t", **EVERYTHING),
        "alice": make_user("alice", "alice secret", consume=["jobs.*"]),
        "carol": make_user("carol", "c", **EVERYTHING),
        "dora": make_user("dora", "d", admin=["dlq.*"]),
    }))
    return path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, users_file: Path) -> Iterator[BrokerProcess]:
    db = tmp_path_factory.mktemp("auth") / "mq.db"
    with BrokerProcess(db, "--users", str(users_file), "--auth-failure-delay-s",
                       str(DELAY_S)) as b:
        yield b


# Each command that needs authentication, well formed, in both modes: none may run before AUTH.
TEXT_LINES = ["PUB q x", "GET q", "ACK 1.1", "NACK 1.1", "TOUCH 1.1", "FANOUT t x", "DECLARE q",
              "PEEK q", "PURGE q", "DELETE q", "REDRIVE q", "BIND t q", "UNBIND t q",
              "BINDINGS", "EXPLAIN 1", "HISTORY 1", "SUB q", "UNSUB q", "MONITOR", "UNMONITOR",
              "QUEUES", "STATS", "HELLO w", "HEARTBEAT", "HB", "JOIN q g", "LEAVE q", "CLUSTER"]
BINARY_REQUESTS: list[dict[str, Any]] = [
    {"op": "pub", "queue": "q", "body": b"x"}, {"op": "mpub", "queue": "q", "bodies": [b"x"]},
    {"op": "get", "queue": "q"}, {"op": "ack", "receipt": "1.1"},
    {"op": "ack", "receipts": ["1.1"]}, {"op": "nack", "receipt": "1.1"},
    {"op": "touch", "receipt": "1.1"}, {"op": "fanout", "topic": "t", "body": b"x"},
    {"op": "declare", "queue": "q"}, {"op": "peek", "queue": "q"},
    {"op": "purge", "queue": "q"}, {"op": "delete", "queue": "q"},
    {"op": "redrive", "queue": "q"}, {"op": "bind", "topic": "t", "queue": "q"},
    {"op": "unbind", "topic": "t", "queue": "q"}, {"op": "bindings"},
    {"op": "explain", "msg_id": 1}, {"op": "history", "msg_id": 1}, {"op": "sub", "queue": "q"},
    {"op": "unsub", "queue": "q"}, {"op": "monitor"}, {"op": "unmonitor"}, {"op": "queues"},
    {"op": "stats"}, {"op": "hello", "consumer": "w"}, {"op": "heartbeat"},
    {"op": "join", "queue": "q", "group": "g"}, {"op": "leave", "queue": "q"},
    {"op": "cluster"},
]


def test_the_lists_cover_every_command_that_needs_authentication() -> None:
    needing = {v for v, e in REGISTRY.by_verb.items() if not e.spec.before_auth}
    assert {line.split()[0] for line in TEXT_LINES} == needing
    assert {r["op"] for r in BINARY_REQUESTS} == {
        op for op, e in REGISTRY.by_op.items() if not e.spec.before_auth}


def test_text_mode_before_auth_refuses_all_but_ping_help_auth_quit(broker: BrokerProcess) -> None:
    t = TextSession(broker.port)
    for line in TEXT_LINES:
        assert t.ask(line).startswith("-ERR UNAUTHENTICATED "), line
    assert t.ask("PING") == "+PONG"
    assert t.ask("HELP") == "+OK"
    assert t.ask("AUTH root r00t") == "+OK authenticated as root"
    assert t.ask("STATS").startswith("+OK")
    assert t.ask("QUIT") == "+BYE"


def test_binary_mode_before_auth_refuses_all_but_ping_auth_quit(broker: BrokerProcess) -> None:
    b = BinarySession(broker.port)
    for request in BINARY_REQUESTS:
        reply = b.call(**request)
        assert (reply["ok"], reply["code"], reply["fatal"]) == (False, "UNAUTHENTICATED", False)
    assert b.call("ping")["ok"] is True
    assert b.call("auth", user="root", secret="r00t") == {"rid": len(BINARY_REQUESTS) + 2,
                                                          "ok": True, "user": "root"}
    assert b.call("queues")["ok"] is True
    assert b.call("quit")["ok"] is True and b.closed_by_peer()


def test_consume_on_jobs_star_consumes_jobs_a_but_publishes_nothing_and_peeks_nothing(
        broker: BrokerProcess) -> None:
    with Client.connect(f"mq://root:r00t@127.0.0.1:{broker.port}") as root:
        root.publish("jobs.a", b"work")
        root.publish("billing", b"invoice")
    with Client.connect(f"mq://127.0.0.1:{broker.port}", user="alice",
                        secret="alice secret") as alice:
        (msg,) = alice.get("jobs.a")
        assert msg.body == b"work"
        alice.ack(msg)
        with pytest.raises(Forbidden, match=r"publish permission on queue 'jobs.a'"):
            alice.publish("jobs.a", b"x")
        with pytest.raises(Forbidden, match=r"inspect permission on queue 'billing'"):
            alice.peek("billing")
        with pytest.raises(Forbidden, match=r"consume permission on queue 'billing'"):
            alice.get("billing")
        with pytest.raises(Forbidden, match=r"on every queue"):
            alice.stats()


def test_a_session_token_resumes_only_for_the_user_that_started_it(broker: BrokerProcess) -> None:
    owner, thief = TextSession(broker.port), TextSession(broker.port)
    assert owner.ask("AUTH root r00t").startswith("+OK")
    assert thief.ask("AUTH carol c").startswith("+OK")
    token = owner.ask("HELLO w 60").split()[2]
    assert owner.ask("PUB tok.q x").startswith("+OK")
    msg_id = owner.ask("GET tok.q").split()[1].split(".")[0]
    stolen = thief.ask(f"HELLO w 60 {token}")
    assert "resumed=no" in stolen and token not in stolen
    # The owner's connection was not cut off and its session still holds the lease.
    assert owner.ask("HEARTBEAT").startswith("+OK")
    assert owner.ask(f"HELLO w 60 {token}").endswith("resumed=yes")
    assert f"w/{token[:8]}" in owner.ask(f"EXPLAIN {msg_id}")


def test_redrive_back_to_the_origins_needs_admin_on_them(broker: BrokerProcess) -> None:
    with Client.connect(f"mq://root:r00t@127.0.0.1:{broker.port}") as root:
        root.declare("payroll", max_deliveries=1, dead_letter="dlq.payroll")
        root.publish("payroll", b"pay bob")
        (msg,) = root.get("payroll")
        root.nack(msg)  # its only delivery: dead-lettered
        assert root.stats("dlq.payroll")["queues"]["dlq.payroll"]["ready"] == 1
    with Client.connect(f"mq://dora:d@127.0.0.1:{broker.port}") as dora:
        with pytest.raises(Forbidden, match=r"admin permission on queue 'payroll'"):
            dora.redrive("dlq.payroll")
        assert dora.redrive("dlq.payroll", to="dlq.retry") == 1  # a queue it administers


def pub_frame_of(size: int) -> dict[str, Any]:
    """A pub request whose msgpack payload is exactly `size` bytes."""
    body = b"x" * (size - 30)
    while len(msgpack.packb({"op": "pub", "queue": "q", "body": body})) < size:
        body += b"x"
    request = {"op": "pub", "queue": "q", "body": body}
    assert len(msgpack.packb(request)) == size
    return request


def test_before_auth_a_frame_above_max_unauthenticated_frame_bytes_is_too_large(
        broker: BrokerProcess) -> None:
    limit = 64 * 1024  # the default
    anonymous = BinarySession(broker.port)
    anonymous.send(pub_frame_of(limit))
    assert anonymous.read()["code"] == "UNAUTHENTICATED"  # read whole, refused, still open
    anonymous.send(pub_frame_of(limit + 1))
    reply = anonymous.read()
    assert (reply["code"], reply["fatal"]) == ("FRAME_TOO_LARGE", True)
    assert reply["message"] == (f"frame of {limit + 1} bytes is above "
                                f"max_unauthenticated_frame_bytes={limit}")
    assert anonymous.closed_by_peer()
    known = BinarySession(broker.port)
    assert known.call("auth", user="root", secret="r00t")["ok"] is True
    known.send(pub_frame_of(limit + 1))
    assert known.read()["ok"] is True  # after AUTH, max_frame_bytes holds


def test_a_wrong_secret_is_answered_late_without_delaying_others_then_closes(
        broker: BrokerProcess) -> None:
    bad, other = TextSession(broker.port), TextSession(broker.port)
    assert other.ask("AUTH root r00t").startswith("+OK")
    admin = BinarySession(broker.port)
    assert admin.call("auth", user="root", secret="r00t")["ok"] is True
    before = admin.call("stats")["server"]
    started = time.monotonic()
    bad.send("AUTH alice not-her-secret")
    assert other.ask("PING") == "+PONG"  # the loop is not blocked by the wait
    bad.sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        bad.sock.recv(1)  # the refusal is not out yet: it is delayed
    bad.sock.settimeout(10)
    assert bad.reply() == ["-ERR UNAUTHENTICATED wrong user or secret (2 more attempts on this "
                           "connection)"]
    assert time.monotonic() - started >= DELAY_S
    bad.send("AUTH nobody x")  # an unknown name is refused the same way
    bad.send("PING")  # waits behind the AUTH being checked
    assert bad.reply()[0].startswith("-ERR UNAUTHENTICATED wrong user or secret (1 more")
    assert bad.reply() == ["+PONG"]
    assert bad.ask("AUTH alice again-wrong") == ("-ERR UNAUTHENTICATED wrong user or secret; too "
                                                 "many failures, closing the connection")
    after = admin.call("stats")["server"]
    assert (after["auth_refused"] - before["auth_refused"],
            after["auth_accepted"] - before["auth_accepted"],
            after["auth_checks_running"]) == (3, 0, 0)
    with pytest.raises(ConnectionError):
        bad.read_line()
    wait_until(lambda: broker.logged("refused AUTH as 'alice'", "failure 3 of 3"), "logged")
    assert not any("not-her-secret" in line or "again-wrong" in line for line in broker.log)


def test_sdk_typed_errors_for_a_wrong_secret_and_no_credentials(broker: BrokerProcess) -> None:
    with pytest.raises(Unauthenticated, match="wrong user or secret"):
        Client.connect(f"mq://alice:nope@127.0.0.1:{broker.port}")
    with Client.connect(f"mq://127.0.0.1:{broker.port}") as anonymous:
        with pytest.raises(Unauthenticated, match="needs AUTH"):
            anonymous.queues()
        anonymous.ping()


def test_kombu_says_the_urls_user_and_password(broker: BrokerProcess) -> None:
    kombu = pytest.importorskip("kombu", reason="needs the `celery` extra: pip install -e "
                                "'clients/python[celery]'")
    import mq_client.kombu_transport  # noqa: F401  # registers mq://

    with kombu.Connection(f"mq://root:r00t@127.0.0.1:{broker.port}") as conn:
        queue = conn.SimpleQueue("kombu.jobs")
        queue.put({"n": 1})
        message = queue.get(timeout=10)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    with (pytest.raises(Unauthenticated),
          kombu.Connection(f"mq://root:wrong@127.0.0.1:{broker.port}") as conn):
        conn.connect()


def test_sighup_adds_and_removes_users_without_dropping_connections(
        broker: BrokerProcess, users_file: Path) -> None:
    carol, root = TextSession(broker.port), TextSession(broker.port)
    assert carol.ask("AUTH carol c").startswith("+OK")
    assert root.ask("AUTH root r00t").startswith("+OK")
    assert carol.ask("MONITOR").startswith("+OK monitoring")
    add = subprocess.run([sys.executable, "-m", "mq", "user", "add", "--file", str(users_file),
                          "dave", "--secret-stdin", "--publish", "jobs.*"], input="d4ve\n",
                         capture_output=True, text=True, check=True)
    assert "added dave" in add.stdout
    subprocess.run([sys.executable, "-m", "mq", "user", "remove", "--file", str(users_file),
                    "carol"], capture_output=True, check=True)
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: broker.logged("reloaded", "1 connections of removed users"), "reloaded")
    assert root.ask("PUB jobs.x hello") .startswith("+OK")  # same connection, still served
    assert carol.ask("PING") == "+PONG"  # still connected, and no EVENT line came for that PUB
    assert carol.ask("STATS") == ("-ERR UNAUTHENTICATED user 'carol' was removed from the users "
                                  "file; AUTH as another user")
    dave = TextSession(broker.port)
    assert dave.ask("AUTH dave d4ve") == "+OK authenticated as dave"
    assert dave.ask("PUB jobs.y hi").startswith("+OK")
    assert dave.ask("PUB other hi").startswith("-ERR FORBIDDEN user 'dave' lacks the publish")


def test_a_removed_users_session_ends_and_its_refused_heartbeats_keep_nothing_alive(
        tmp_path: Path) -> None:
    users_file = tmp_path / "users.toml"
    save_users(users_file, Users({"root": make_user("root", "r00t", **EVERYTHING),
                                  "erin": make_user("erin", "e", **EVERYTHING)}))
    with BrokerProcess(tmp_path / "mq.db", "--users", str(users_file), "--auth-failure-delay-s",
                       "0.05") as b:
        erin, root = TextSession(b.port), TextSession(b.port)
        assert erin.ask("AUTH erin e").startswith("+OK")
        assert erin.ask("HELLO erin 60").startswith("+OK session")
        assert erin.ask("JOIN q g").endswith("members=1")
        save_users(users_file, Users({"root": make_user("root", "r00t", **EVERYTHING)}))
        assert b.proc is not None
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b.logged("reloaded", "1 connections of removed users"), "reloaded")
        assert erin.ask("HEARTBEAT").startswith("-ERR UNAUTHENTICATED")
        assert root.ask("AUTH root r00t").startswith("+OK")
        assert root.ask("HELLO root 60").startswith("+OK session")
        assert root.ask("JOIN q g").endswith("members=1")  # erin's share went with her session
        # A session whose connection fails a new AUTH is kept alive by nothing it sends.
        assert root.ask("AUTH root wrong").startswith("-ERR UNAUTHENTICATED")
        late = TextSession(b.port)
        assert late.ask("AUTH root r00t").startswith("+OK")
        assert late.ask("HELLO late 0.1").startswith("+OK session")
        assert late.ask("AUTH root wrong").startswith("-ERR UNAUTHENTICATED")
        with pytest.raises(OSError):  # ConnectionError, or a reset
            for _ in range(100):  # 5 s at most; dead after 0.3 s
                late.ask("HEARTBEAT")
                time.sleep(0.05)
        wait_until(lambda: b.logged("consumer late", "missed heartbeats"), "late died")


def test_a_reload_that_takes_a_grant_away_ends_the_streams_it_covered(tmp_path: Path) -> None:
    users_file = tmp_path / "users.toml"
    save_users(users_file, Users({"root": make_user("root", "r00t", **EVERYTHING),
                                  "erin": make_user("erin", "e", consume=["jobs.*"],
                                                    inspect=["*"])}))
    with BrokerProcess(tmp_path / "mq.db", "--users", str(users_file)) as b:
        erin, text = BinarySession(b.port), TextSession(b.port)
        assert erin.call("auth", user="erin", secret="e")["ok"] is True
        for op, fields in [("hello", {"consumer": "erin"}), ("join", {"queue": "jobs.keyed",
                           "group": "g"}), ("sub", {"queue": "jobs.a"}),
                           ("sub", {"queue": "jobs.kept"}), ("monitor", {})]:
            assert erin.call(op, **fields)["ok"] is True
        assert text.ask("AUTH erin e").startswith("+OK")
        assert text.ask("SUB jobs.b").startswith("+OK")

        async def subscribe_with_the_sdk() -> None:
            async with AsyncClient.connect(f"mq://erin:e@127.0.0.1:{b.port}") as sdk:
                sub = await sdk.subscribe("jobs.c")
                assert b.proc is not None
                save_users(users_file, Users({
                    "root": make_user("root", "r00t", **EVERYTHING),
                    "erin": make_user("erin", "e", consume=["jobs.kept"])}))
                b.proc.send_signal(signal.SIGHUP)
                with pytest.raises(Forbidden, match=r"no longer has the consume permission on "
                                   r"queue 'jobs\.c'"):
                    async with asyncio.timeout(10):
                        await sub.__anext__()

        asyncio.run(subscribe_with_the_sdk())
        wait_until(lambda: b.logged("reloaded", "5 streams and group memberships ended"),
                   "reloaded")  # sub jobs.a, group of jobs.keyed, monitor, text and SDK subs
        pushes = [erin.read() for _ in range(2)]
        assert [(p["push"], p["stream"], p["queue"], p["code"]) for p in pushes] == [
            ("ended", "sub", "jobs.a", "FORBIDDEN"), ("ended", "monitor", None, "FORBIDDEN")]
        assert text.read_line().startswith("ENDED SUB jobs.b FORBIDDEN user 'erin' no longer")
        root = TextSession(b.port)
        assert root.ask("AUTH root r00t").startswith("+OK")
        assert root.ask("PUB jobs.kept still yours").startswith("+OK")
        assert root.ask("PUB jobs.a not any more").startswith("+OK")
        pushed = erin.read()  # the subscription still covered goes on, the other is gone
        assert (pushed["push"], pushed["queue"], pushed["msgs"][0]["body"]) == (
            "msgs", "jobs.kept", b"still yours")
        assert root.ask("HELLO root 60").startswith("+OK session")
        assert root.ask("JOIN jobs.keyed g").endswith("members=1")  # erin left the group


def test_a_non_loopback_host_without_a_users_file_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mq", "serve", "--host", "0.0.0.0", "--port",
                           "0", "--db", str(tmp_path / "mq.db")], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "refusing to serve 0.0.0.0 without --users" in done.stderr
    assert "--insecure" in done.stderr
    assert not (tmp_path / "mq.db").exists()


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA,
               users_file: Path) -> Iterator[tuple[BrokerProcess, Path]]:
    where = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(where / "cert.pem"))
    cert.private_key_pem.write_to_path(str(where / "key.pem"))
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    with BrokerProcess(where / "mq.db", "--users", str(users_file), "--tls-cert",
                       str(where / "cert.pem"), "--tls-key", str(where / "key.pem"),
                       "--http-port", "0") as b:
        yield b, where / "ca.pem"


def test_readyz_says_ready_when_the_port_speaks_tls(
        tls_broker: tuple[BrokerProcess, Path]) -> None:
    broker, _ = tls_broker
    conn = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    try:
        conn.request("GET", "/readyz")
        reply = conn.getresponse()
        assert (reply.status, reply.read()) == (200, b"ready\n")
    finally:
        conn.close()


def test_a_plain_client_on_the_tls_port_is_told_so_in_its_mode_and_closed(
        tls_broker: tuple[BrokerProcess, Path]) -> None:
    broker, _ = tls_broker
    text = TextSession(broker.port)
    text.send("PING")
    assert text.read_line().startswith("-ERR TLS_REQUIRED this port speaks TLS only")
    with pytest.raises(ConnectionError):
        text.read_line()
    binary = BinarySession(broker.port)
    binary.send({"op": "ping", "rid": 1})
    reply = binary.read()
    assert (reply["code"], reply["fatal"], reply["rid"]) == ("TLS_REQUIRED", True, None)
    assert binary.closed_by_peer()


def test_the_sdk_verifies_the_broker_certificate(tls_broker: tuple[BrokerProcess, Path]) -> None:
    broker, ca_file = tls_broker
    url = f"mqs://root:r00t@127.0.0.1:{broker.port}"

    async def scenario() -> None:
        async with AsyncClient.connect(url, ca_file=str(ca_file)) as mq:
            await mq.publish("tls.q", b"sealed")
            (msg,) = await mq.get("tls.q")
            assert msg.body == b"sealed"
        with pytest.raises(ConnectionLost, match="certificate verify failed"):
            await AsyncClient.connect(url)  # the system's CAs do not know ours
        other = trustme.CA()  # a broker certificate from a CA we were not told to trust
        context = ssl.create_default_context()
        other.configure_trust(context)
        with pytest.raises(ConnectionLost, match="certificate verify failed"):
            await AsyncClient.connect(url, ssl_context=context)

    asyncio.run(scenario())
    with Client.connect(url, ca_file=str(ca_file)) as mq:  # the blocking client too
        mq.publish_many("tls.q", [b"x" * 100_000] * 5)  # several TLS records per reply
        assert len(mq.get("tls.q", max=5)) == 5
    with pytest.raises(ConnectionLost, match="certificate verify failed"):
        Client.connect(url)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line tool "
                    "(apt-get install openssl)")
def test_openssl_s_client_is_a_telnet_for_the_tls_port(
        tls_broker: tuple[BrokerProcess, Path]) -> None:
    broker, ca_file = tls_broker
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{broker.port}",
                           "-quiet", "-verify_return_error", "-CAfile", str(ca_file)],
                          input="PING\nAUTH root r00t\nQUEUES\nQUIT\n", capture_output=True,
                          text=True, timeout=30)
    assert done.stdout.splitlines()[:2] == ["+PONG", "+OK authenticated as root"]
    assert done.stdout.splitlines()[-1] == "+BYE"


def test_a_tls_port_closes_a_socket_that_says_nothing_after_the_handshake_timeout(
        tmp_path: Path, ca: trustme.CA) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with BrokerProcess(tmp_path / "mq.db", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key",
                       str(tmp_path / "key.pem"), "--tls-handshake-timeout-s", "0.3") as b:
        with socket.create_connection(("127.0.0.1", b.port), timeout=8) as silent:
            assert silent.recv(1) == b""  # closed by the broker, not by this timeout
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with Client.connect(f"mqs://127.0.0.1:{b.port}", ssl_context=context) as mq:
            mq.ping()  # the port goes on serving
        assert not b.logged("handshake")  # closed silently


def test_a_client_certificate_can_be_required(tmp_path: Path, ca: trustme.CA) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with BrokerProcess(tmp_path / "mq.db", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key",
                       str(tmp_path / "key.pem"), "--tls-ca", str(tmp_path / "ca.pem")) as b:
        url = f"mqs://127.0.0.1:{b.port}"
        with (pytest.raises((ConnectionLost, OSError)),
              Client.connect(url, ca_file=str(tmp_path / "ca.pem")) as anonymous):
            anonymous.ping()  # TLS 1.3 may only refuse once the client speaks
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        ca.issue_cert("worker-1").configure_cert(context)
        with Client.connect(url, ssl_context=context) as mq:
            mq.ping()


def test_the_sdk_authenticates_again_after_a_reconnect(tmp_path: Path, users_file: Path) -> None:
    port = free_port()
    broker = BrokerProcess(tmp_path / "mq.db", "--users", str(users_file), "--port", str(port))

    async def scenario() -> None:
        async with AsyncClient.connect(f"mq://root:r00t@127.0.0.1:{port}", reconnect=True) as mq:
            await mq.publish("re.q", b"1")
            broker.kill()
            broker.start()

            async def reconnected() -> bool:
                return mq.reconnects == 1

            await wait_until_async(reconnected, "the client reconnected")
            await mq.publish("re.q", b"2")  # refused UNAUTHENTICATED had it not said auth again

    with broker:
        asyncio.run(scenario())


def test_the_blocking_client_authenticates_again_after_a_reconnect(
        tmp_path: Path, users_file: Path) -> None:
    port = free_port()
    users = ("--users", str(users_file))
    with (BrokerProcess(tmp_path / "mq.db", *users, "--port", str(port)) as broker,
          Client.connect(f"mq://root:r00t@127.0.0.1:{port}", reconnect=True) as mq):
        mq.publish("re.q", b"1")
        broker.kill()
        broker.start()
        mq.publish("re.q", b"2")  # refused UNAUTHENTICATED had it not said auth again
        assert mq.reconnects == 1
        assert mq.stats("re.q")["queues"]["re.q"]["ready"] == 2
