"""Sans-IO protocol engine: bytes in, commands out; results in, bytes out. No sockets, no clock."""
