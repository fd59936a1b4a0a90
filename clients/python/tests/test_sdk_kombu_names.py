"""The kombu transport's pure parts: queue names mq accepts, and publish options from a message."""

from __future__ import annotations

import pytest

kombu = pytest.importorskip("kombu", reason="needs the `celery` extra: pip install -e 'clients/python[celery]'")

from kombu import Connection  # noqa: E402
from kombu.transport import get_transport_cls  # noqa: E402

from mq_client.kombu_transport import Transport, mq_name, publish_options  # noqa: E402


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
