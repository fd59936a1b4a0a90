"""Python client for the mq message broker; protocol.md is the contract it speaks.

`AsyncClient` for asyncio code (`async with AsyncClient.connect(url) as c:`), `Client` for
blocking scripts (`with Client.connect(url) as c:`), `consume` and `consume_blocking` for a
worker loop on each (`Retry` spaces out their retries), `Session` for what `hello` returns,
`AckResult` for what `ack_many` returns, `OutcomeUnknown` for a call the connection dropped
under, `PublishResult` for `publish_dedup`, `PeekedMessage` for `peek`, `Subscription` and
`Monitor` for the push streams of `AsyncClient.subscribe` and `AsyncClient.monitor`, and the
typed errors in `mq_client.errors`. `Headers` are a message's headers; `JSON` and `MSGPACK` are
the optional serializers of bodies (mq_client.serializers). README.md has examples.
"""

from pathlib import Path

from mq_client import errors
from mq_client.aio import AsyncClient
from mq_client.blocking_consumer import consume_blocking
from mq_client.consumer import consume
from mq_client.errors import ConnectionLost, Forbidden, MQError, OutcomeUnknown, ProtocolError, Unauthenticated
from mq_client.message import AckFailure, AckResult, Headers, Message, PeekedMessage, PublishResult
from mq_client.push import Monitor, Subscription
from mq_client.retry import Retry
from mq_client.serializers import JSON, MSGPACK, ContentTypeMismatch, Encoded, Serializer
from mq_client.session import Session
from mq_client.sync import Client

__version__ = Path(__file__).with_name("VERSION").read_text(encoding="ascii").strip()
"""The version of mq: the broker and this SDK carry the same one, written once, in VERSION."""

__all__ = [
    "JSON",
    "MSGPACK",
    "AckFailure",
    "AckResult",
    "AsyncClient",
    "Client",
    "ConnectionLost",
    "ContentTypeMismatch",
    "Encoded",
    "Forbidden",
    "Headers",
    "MQError",
    "Message",
    "Monitor",
    "OutcomeUnknown",
    "PeekedMessage",
    "ProtocolError",
    "PublishResult",
    "Retry",
    "Serializer",
    "Session",
    "Subscription",
    "Unauthenticated",
    "consume",
    "consume_blocking",
    "errors",
]
