"""mq: a durable message broker (asyncio, msgpack over TCP, SQLite log)."""

__version__ = "0.1.0"
