"""Run a broker in this process: choose the event loop, install signal handlers, serve."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

from mq.server.app import BrokerServer
from mq.server.config import Config
from mq.server.logs import setup_logging


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """The one place that picks the event loop: uvloop when installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps dev setups working
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(config: Config) -> None:
    server = BrokerServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    loop.add_signal_handler(signal.SIGHUP, server.reload_users)
    await server.run()


def serve(config: Config) -> None:
    setup_logging(config.log_level, config.log_format)
    run_loop(_serve(config))
