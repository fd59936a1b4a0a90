"""mq: a durable message broker (asyncio, msgpack over TCP, SQLite log)."""

from mq_client import __version__  # one version for the broker and its SDK (mq_client/VERSION)

__all__ = ["__version__"]
