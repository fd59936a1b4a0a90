"""What `AsyncClient.connect` returns: a connection being made, to await or to use with `async with`."""

from __future__ import annotations

import ssl
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mq_client import ops
from mq_client.cluster_link import ClusterLink
from mq_client.cluster_routing import DEFAULT_OWNER_CHECK_S
from mq_client.connection import Connection
from mq_client.link import Link
from mq_client.security import client_context, credentials
from mq_client.url import Address, parse_seeds

if TYPE_CHECKING:
    from mq_client.aio import AsyncClient


class Connecting:
    """What `AsyncClient.connect` returns: awaitable, and an async context manager."""

    __slots__ = ("_address", "_client", "_cls", "_cluster", "_connect_timeout_s", "_credentials", "_max_frame_bytes",
                 "_owner_check_s", "_reconnect", "_reconnect_timeout_s", "_seeds", "_ssl_context",
                 "_takeover_timeout_s")

    def __init__(
        self,
        cls: type[AsyncClient],
        url: str,
        *,
        connect_timeout_s: float,
        max_frame_bytes: int,
        reconnect: bool,
        reconnect_timeout_s: float,
        user: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        cluster: bool = False,
        takeover_timeout_s: float = 10.0,
        owner_check_s: float = DEFAULT_OWNER_CHECK_S,
    ) -> None:
        self._seeds = parse_seeds(url)  # a bad URL fails at the call site, not at the first await
        self._address = self._seeds[0]
        self._cluster = cluster or len(self._seeds) > 1
        self._takeover_timeout_s = takeover_timeout_s
        self._owner_check_s = owner_check_s
        self._credentials = credentials(self._address, user, secret)
        self._ssl_context = client_context(self._address, ssl_context, ca_file)
        self._cls = cls
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._reconnect = reconnect
        self._reconnect_timeout_s = reconnect_timeout_s
        self._client: AsyncClient | None = None

    async def _dial(self) -> Connection:
        """A new connection, authenticated when there are credentials: reconnects use it too."""
        return await self._dial_to(self._address)

    async def _dial_to(self, address: Address) -> Connection:
        conn = await Connection.open(
            address,
            connect_timeout_s=self._connect_timeout_s,
            max_frame_bytes=self._max_frame_bytes,
            ssl_context=self._ssl_context,
        )
        if self._credentials is not None:
            try:
                await conn.call(ops.auth(*self._credentials))
            except BaseException:
                await conn.close()
                raise
        return conn

    async def _open(self) -> AsyncClient:
        if self._cluster:
            links = ClusterLink(self._seeds, self._dial_to, self._takeover_timeout_s, self._max_frame_bytes,
                                self._owner_check_s)
            try:
                await links.start()
            except BaseException:
                await links.close()
                raise
            return self._cls(links)
        link = Link(
            await self._dial(),
            dial=self._dial if self._reconnect else None,
            reconnect_timeout_s=self._reconnect_timeout_s,
        )
        return self._cls(link)

    def __await__(self) -> Generator[Any, None, AsyncClient]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncClient:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()
