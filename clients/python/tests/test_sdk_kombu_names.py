"""The kombu transport's pure parts: queue names mq accepts, and publish options from a message."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

kombu = pytest.importorskip("kombu", reason="needs the `celery` extra: pip install -e 'clients/python[celery]'")

from kombu import Connection  # noqa: E402
from kombu.transport import get_transport_cls  # noqa: E402

from mq_client.kombu_transport import Transport, endpoint, mq_name, publish_options  # noqa: E402


def test_importing_the_module_registers_the_mq_scheme() -> None:
    assert get_transport_cls("mq") is Transport
    assert Connection("mq://127.0.0.1:7799").transport_cls == "mq"


def test_names_mq_allows_are_kept_and_others_escaped_one_to_one() -> None:
    assert mq_name("celery") == "celery"
    assert mq_name("a.b-c_d") == "a.b-c_d"
    assert mq_name("celery@host") == "celery:40host"
    assert mq_name("a:40host") == "a:3a40host"  # ':' itself is escaped, so no two names meet
    assert mq_name("é") == ":c3:a9"
    assert mq_name("") == ":"


def test_a_future_eta_becomes_not_before_and_a_past_one_is_dropped() -> None:
    message = {"headers": {"eta": "2030-01-01T00:00:10+00:00"}, "properties": {"priority": 0}}
    assert publish_options(message, now_s=1_800_000_000.0) == {"not_before": 1893456010.0}
    assert publish_options(message, now_s=1_900_000_000.0) == {}
    naive = {"headers": {"eta": "2030-01-01T00:00:10"}, "properties": {}}  # taken as UTC
    assert publish_options(naive, now_s=0.0) == {"not_before": 1893456010.0}
    assert publish_options({"headers": {"eta": "soon"}, "properties": {}}, now_s=0.0) == {}


def test_priority_is_capped_at_9_and_expiration_becomes_ttl() -> None:
    message = {"headers": {}, "properties": {"priority": 200, "expiration": "1500"}}
    assert publish_options(message, now_s=0.0) == {"priority": 9, "ttl_s": 1.5}


def test_the_urls_credentials_and_broker_use_ssl_reach_the_mq_client(tmp_path: Path) -> None:
    plain = endpoint(Connection("mq://alice:open%20sesame@broker.example:7799"))
    assert (plain.url, plain.user, plain.secret, plain.ssl_context) == (
        "mq://broker.example:7799",
        "alice",
        "open sesame",
        None,
    )
    assert "open sesame" not in repr(plain)
    assert endpoint(Connection("mq://h:1")).user is None
    assert endpoint(Connection("mq://h:1", ssl=True)).url == "mqs://h:1"
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = endpoint(Connection("mq://h:1", ssl={"ca_certs": str(tmp_path / "ca.pem")}))
    assert tls.url == "mqs://h:1" and tls.ssl_context is not None
    assert tls.ssl_context.verify_mode == ssl.CERT_REQUIRED and tls.ssl_context.check_hostname
    assert len(tls.ssl_context.get_ca_certs()) == 1
