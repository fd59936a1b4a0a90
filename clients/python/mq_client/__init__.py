"""Python client for the mq message broker; protocol.md is the contract it speaks.

`AsyncClient` for asyncio code (`async with AsyncClient.connect(url) as c:`), `Client` for
blocking scripts (`with Client.connect(url) as c:`), `consume` for a worker loop (`Retry`
spaces out its retries), `Session` for what `hello` returns, `AckResult` for what `ack_many`
returns, `PublishResult` for `publish_dedup`, `PeekedMessage` for `peek`, `Subscription` and
`Monitor` for the push streams of `AsyncClient.subscribe` and `AsyncClient.monitor`, and the
typed errors in `mq_client.errors`. README.md has examples.
"""

from mq_client import errors
from mq_client.aio import AsyncClient
from mq_client.consumer import Retry, consume
from mq_client.errors import ConnectionLost, MQError, ProtocolError
from mq_client.message import AckFailure, AckResult, Message, PeekedMessage, PublishResult
from mq_client.push import Monitor, Subscription
from mq_client.session import Session
from mq_client.sync import Client

__all__ = [
    "AckFailure",
    "AckResult",
    "AsyncClient",
    "Client",
    "ConnectionLost",
    "MQError",
    "Message",
    "Monitor",
    "PeekedMessage",
    "ProtocolError",
    "PublishResult",
    "Retry",
    "Session",
    "Subscription",
    "consume",
    "errors",
]
