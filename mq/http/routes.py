"""Which path answers what: the probes, /metrics, the dashboard's page, files and JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mq.http import api, metrics
from mq.http.request import HttpError, Request
from mq.http.view import BrokerView

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
STATIC = {  # file of mq/http/static -> its content type
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, TEXT, text.encode())

    @classmethod
    def json(cls, status: int, value: Any) -> Response:
        return cls(status, JSON, json.dumps(value, separators=(",", ":")).encode())


class Routes:
    def __init__(self, view: BrokerView) -> None:
        self.view = view
        folder = resources.files("mq.http") / "static"
        self.files = {name: (folder / name).read_bytes() for name in STATIC}
        self.table: dict[str, Callable[[Request], Response]] = {
            "/healthz": lambda r: Response.text(200, "ok\n"),
            "/readyz": self.readyz,
            "/api/overview": lambda r: Response.json(200, api.overview(self.view)),
            "/api/explain": self.explain,
            "/": lambda r: self.file("index.html"),
            **{f"/static/{name}": self._static(name) for name in STATIC},
        }

    async def answer(self, request: Request) -> Response:
        if request.path == "/metrics":  # the one answer that is not made at once
            return await self.metrics(request)
        route = self.table.get(request.path)
        if route is None:
            return Response.text(404, f"no page {request.path[:100]}; try /, /metrics, "
                                 "/healthz, /readyz\n")
        return route(request)

    def file(self, name: str) -> Response:
        return Response(200, STATIC[name], self.files[name])

    def _static(self, name: str) -> Callable[[Request], Response]:
        return lambda request: self.file(name)

    async def metrics(self, request: Request) -> Response:
        figures = metrics.read(self.view)  # on the loop: the broker changes only here
        body, content_type = await asyncio.to_thread(metrics.render, figures,
                                                     request.headers.get("accept", ""))
        return Response(200, content_type, body)

    def readyz(self, request: Request) -> Response:
        reason = self.view.not_ready()
        return Response.text(200, "ready\n") if reason is None else Response.text(
            503, f"not ready: {reason}\n")

    def explain(self, request: Request) -> Response:
        try:
            return Response.json(200, api.explain(self.view, request.query))
        except HttpError as e:
            return Response.json(e.status, {"error": e.message})
