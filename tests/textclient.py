"""A raw socket that speaks text mode exactly as a telnet user types it (CRLF line ends)."""

from __future__ import annotations

import socket


class TextSession:
    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._buffer = b""

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def read_line(self) -> str:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the broker; unread: {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", errors="surrogateescape")

    def reply(self) -> list[str]:
        """All lines of one reply: up to the line that starts with '+', '-ERR ' or 'MSG '."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(("+", "-ERR ", "MSG ")):
                return lines

    def ask(self, line: str | bytes) -> str:
        """Send one command and return the last line of its reply."""
        self.send(line)
        return self.reply()[-1]

    def close(self) -> None:
        self.sock.close()
