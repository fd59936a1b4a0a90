"""The HTTP side port's server: one request per connection, on the broker's own event loop.

Theory of operation. Each connection sends one request head (no bodies are taken) and gets one
response, then the connection is closed (`Connection: close`): the dashboard polls once a
second or two, and Prometheus scrapes every few seconds, so keep-alive would buy nothing and
cost a state machine. Everything a client could make the broker hold is bounded (`Limits`): the
head's bytes (asyncio's reader limit), its header count, the connections open at once (one more
is answered 503 at once), and the time a client may take to send its head or read the response
(a slow client is answered 408 or dropped). What a request shows is read from the view in one
go on the loop, so it never sees half a round of the broker.

After an error reply the rest of what the client sent is read and thrown away for a moment
before closing: closing a socket with unread input resets the connection, and the client might
lose the reply that says what it did wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from http import HTTPStatus

from mq.http.request import HttpError, Request, parse_head
from mq.http.routes import Response, Routes

log = logging.getLogger("mq.http")

LINGER_S = 1.0  # how long the rest of a refused request is read before closing
LINGER_BYTES = 1024 * 1024  # ... and at most this much of it
HEAD_END = b"\r\n\r\n"
MIN_REQUEST_BYTES = 64


@dataclass(frozen=True, slots=True)
class Limits:
    max_request_bytes: int  # request line and headers together
    max_headers: int
    max_connections: int  # open at once
    timeout_s: float  # to send the request head, and again to read the response

    def __post_init__(self) -> None:
        if self.max_request_bytes < MIN_REQUEST_BYTES:
            raise ValueError(f"the HTTP request bound must be at least {MIN_REQUEST_BYTES} bytes")
        if min(self.max_headers, self.max_connections) < 1:
            raise ValueError("every HTTP bound must be at least 1")
        if not self.timeout_s > 0:
            raise ValueError("the HTTP timeout must be above 0 seconds")


def encode(response: Response, with_body: bool = True) -> bytes:
    status = HTTPStatus(response.status)
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Connection: close\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Content-Security-Policy: default-src 'self'\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in response.headers)
            + "\r\n")
    return head.encode("latin-1") + (response.body if with_body else b"")


class HttpServer:
    def __init__(self, routes: Routes, limits: Limits) -> None:
        self.routes = routes
        self.limits = limits
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on `host`:`port` (0: any free port); returns the port."""
        # The reader's limit bounds what comes before the blank line that ends a head.
        limit = self.limits.max_request_bytes - len(HEAD_END)
        self._server = await asyncio.start_server(self._serve, host, port, limit=limit)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def close(self) -> None:
        """Listen no more and drop the connections still open."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self.limits.max_connections:
            writer.write(encode(Response.text(503, f"more than {self.limits.max_connections} "
                                              "HTTP connections are open; retry later\n")))
            writer.close()
            return
        self._open.add(writer)
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or would not read: nothing more to tell it
        except Exception:
            log.exception("internal error on the HTTP port")
        finally:
            self._open.discard(writer)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                        ) -> None:
        request: Request | None = None
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                head = await reader.readuntil(HEAD_END)
            request = parse_head(head, self.limits.max_headers)
            response = await self._answer(request)
        except asyncio.IncompleteReadError:
            return  # closed before it finished its request: nobody to answer
        except HttpError as e:
            response = Response(e.status, "text/plain; charset=utf-8",
                                f"{e.message}\n".encode(), e.headers)
        except asyncio.LimitOverrunError:
            response = Response.text(431, f"the request head is above "
                                     f"{self.limits.max_request_bytes} bytes\n")
        except TimeoutError:
            response = Response.text(408, f"the request head did not come within "
                                     f"{self.limits.timeout_s:g} s\n")
        writer.write(encode(response, with_body=request is None or request.method != "HEAD"))
        async with asyncio.timeout(self.limits.timeout_s):
            await writer.drain()
        if request is None:
            await _linger(reader, writer)

    async def _answer(self, request: Request) -> Response:
        try:
            return await self.routes.answer(request)
        except Exception:
            log.exception("internal error answering %s %s", request.method, request.path[:100])
            return Response.text(500, "internal error; see the broker log\n")


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Say we are done, then read what the client still sends for a moment (see above)."""
    if writer.can_write_eof():
        writer.write_eof()
    read = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER_S):
            while read < LINGER_BYTES:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                read += len(chunk)
