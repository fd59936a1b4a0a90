"""What `AsyncClient.connect` returns: a connection being made, to await or to use with `async with`."""

from __future__ import annotations

import functools
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mq_client.connection import Connection
from mq_client.link import Link
from mq_client.url import parse_url

if TYPE_CHECKING:
    from mq_client.aio import AsyncClient


class Connecting:
    """What `AsyncClient.connect` returns: awaitable, and an async context manager."""

    __slots__ = ("_address", "_client", "_cls", "_connect_timeout_s", "_max_frame_bytes", "_reconnect",
                 "_reconnect_timeout_s")

    def __init__(
        self,
        cls: type[AsyncClient],
        url: str,
        *,
        connect_timeout_s: float,
        max_frame_bytes: int,
        reconnect: bool,
        reconnect_timeout_s: float,
    ) -> None:
        self._address = parse_url(url)  # a bad URL fails at the call site, not at the first await
        self._cls = cls
        self._connect_timeout_s = connect_timeout_s
        self._max_frame_bytes = max_frame_bytes
        self._reconnect = reconnect
        self._reconnect_timeout_s = reconnect_timeout_s
        self._client: AsyncClient | None = None

    async def _open(self) -> AsyncClient:
        dial = functools.partial(
            Connection.open,
            self._address,
            connect_timeout_s=self._connect_timeout_s,
            max_frame_bytes=self._max_frame_bytes,
        )
        link = Link(
            await dial(),
            dial=dial if self._reconnect else None,
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
