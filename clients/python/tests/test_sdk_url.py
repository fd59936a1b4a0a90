"""Broker URLs."""

from __future__ import annotations

import pytest

from mq_client.url import DEFAULT_URL, Address, parse_url, shown


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("mq://127.0.0.1:7711", "127.0.0.1", 7711),
        ("mq://broker.local:9000", "broker.local", 9000),
        ("mq://broker.local", "broker.local", 7711),
        ("mq://:9000", "127.0.0.1", 9000),
        ("mq://", "127.0.0.1", 7711),
        ("mq://[::1]:7711", "::1", 7711),
        ("mq://host:7711/", "host", 7711),
        ("MQ://host:1", "host", 1),
        (DEFAULT_URL, "127.0.0.1", 7711),
    ],
)
def test_parse(url: str, host: str, port: int) -> None:
    assert parse_url(url) == Address(host, port)


@pytest.mark.parametrize(
    "url",
    ["http://host:7711", "tcp://host:7711", "host:7711", "127.0.0.1:7711", "mq:host", "", "mqs:host"],
)
def test_other_schemes_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match=r"mq://host:port"):
        parse_url(url)


@pytest.mark.parametrize(
    "url",
    ["mq://host:0", "mq://host:65536", "mq://host:port", "mq://host/queue", "mq://u@host", "mq://h?x=1", "mq://[::1"],
)
def test_malformed_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_address_prints_as_a_url() -> None:
    assert str(Address("127.0.0.1", 7711)) == "mq://127.0.0.1:7711"
    assert str(Address("::1", 1)) == "mq://[::1]:1"
    assert parse_url(str(Address("::1", 1))) == Address("::1", 1)


def test_tls_and_credentials() -> None:
    assert parse_url("mqs://broker:7712") == Address("broker", 7712, tls=True)
    a = parse_url("mq://alice:p%40ss%20word@host:1")
    assert (a.user, a.secret, a.tls) == ("alice", "p@ss word", False)
    assert str(a) == "mq://alice@host:1" and "p@ss" not in repr(a)  # the secret is never shown
    assert str(parse_url("MQS://h")) == "mqs://h:7711"


@pytest.mark.parametrize(
    "url",
    ["mq://alice:s3cret@host:99999", "mq://alice:s3cret@host/queue", "mq://alice:s3cret@[::1", "tcp://alice:s3cret@h"],
)
def test_an_error_about_a_url_never_repeats_its_secret(url: str) -> None:
    with pytest.raises(ValueError, match=r"alice:\*\*\*@") as refused:
        parse_url(url)
    assert "s3cret" not in str(refused.value)


def test_shown_hides_only_the_secret() -> None:
    assert shown("mq://alice:p%40ss@host:1/x") == "mq://alice:***@host:1/x"
    assert shown("mq://alice@host:1") == "mq://alice@host:1"
    assert shown("mq://host:1") == "mq://host:1"
