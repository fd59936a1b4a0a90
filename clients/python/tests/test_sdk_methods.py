"""One definition of each operation: both clients' methods are made from the functions of ops.py
and admin_ops.py, with their parameters, defaults and docstrings."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fake_broker import ThreadedFakeBroker

from mq_client import AsyncClient, Client, admin_ops, ops
from mq_client.methods import blocking
from mq_client.request import Request, request_fields

OPERATIONS = [
    (ops, "ping"), (ops, "publish"), (ops, "publish_dedup"), (ops, "publish_many"), (ops, "fanout"),
    (ops, "get"), (ops, "lease"), (ops, "ack"), (ops, "ack_many"), (ops, "nack"), (ops, "touch"),
    (ops, "queues"), (ops, "stats"), (ops, "heartbeat"), (ops, "join"), (ops, "leave"),
    (admin_ops, "declare"), (admin_ops, "purge"), (admin_ops, "delete"), (admin_ops, "peek"),
    (admin_ops, "redrive"), (admin_ops, "bind"), (admin_ops, "unbind"), (admin_ops, "bindings"),
    (admin_ops, "explain"), (admin_ops, "history"),
]


def _without_self(method: Any) -> list[inspect.Parameter]:
    return list(inspect.signature(method).parameters.values())[1:]


@pytest.mark.parametrize(("module", "name"), OPERATIONS, ids=[n for _, n in OPERATIONS])
def test_both_clients_take_the_operations_own_parameters(module: Any, name: str) -> None:
    build = getattr(module, name)
    sync_method, async_method = getattr(Client, name), getattr(AsyncClient, name)
    assert _without_self(sync_method) == _without_self(async_method)
    own = [p.name for p in inspect.signature(build).parameters.values() if p.kind is not p.VAR_KEYWORD]
    assert [p.name for p in _without_self(sync_method)][: len(own)] == own
    assert sync_method.__doc__ == async_method.__doc__ == build.__doc__
    assert inspect.iscoroutinefunction(async_method) and not inspect.iscoroutinefunction(sync_method)


def test_publish_options_are_spelled_out_as_keywords() -> None:
    keywords = [p.name for p in inspect.signature(Client.publish).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords == ["priority", "delay_s", "not_before", "ttl_s", "dedup_id"]
    assert "dedup_id" not in inspect.signature(AsyncClient.publish_many).parameters


def echo(word: str, times: int = 2) -> Request[str]:
    """Say `word` `times` times."""
    return Request(request_fields("ping"), lambda reply: word * times)


class _Runner:
    def _run(self, request: Request[str]) -> str:
        return request.parse({})

    echo = blocking(echo)


def test_a_new_parameter_reaches_the_method_from_the_definition_alone() -> None:
    assert _Runner().echo("ab", times=3) == "ababab"
    assert str(inspect.signature(_Runner.echo)) == "(self, /, word: str, times: int = 2) -> str"


@pytest.fixture
def fake() -> Iterator[ThreadedFakeBroker]:
    threaded = ThreadedFakeBroker()
    with threaded.running():
        yield threaded


def test_both_clients_send_the_same_request_for_the_same_call(fake: ThreadedFakeBroker) -> None:
    with Client.connect(fake.broker.url) as mq:
        mq.publish("q", b"x", "k", priority=2, delay_s=1.5)

    async def main() -> None:
        async with AsyncClient.connect(fake.broker.url) as amq:
            await amq.publish("q", b"x", "k", delay_s=1.5, priority=2)

    asyncio.run(main())
    sync_sent, async_sent = ({k: v for k, v in s.request.items() if k != "rid"}
                             for s in fake.broker.seen if s.op == "pub")
    assert sync_sent == async_sent == {
        "op": "pub", "queue": "q", "body": b"x", "key": "k", "priority": 2, "delay_s": 1.5}
