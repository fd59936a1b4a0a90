"""The asyncio adapter between sockets and the core. The only layer that awaits sockets."""
