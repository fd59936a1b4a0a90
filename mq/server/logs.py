"""The broker's log: the level and the format (`--log-level`, `--log-format`), set up once.

Text is for a person at a terminal; JSON (one object per line: `at`, `level`, `logger`,
`message`, and `traceback` when there is one) is for a log collector. Neither ever holds a
session token in full: log calls name a session by its holder (`consumer/` and 8 characters).
"""

from __future__ import annotations

import json
import logging
from typing import ClassVar

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    LEVELS: ClassVar[dict[int, str]] = {logging.DEBUG: "debug", logging.INFO: "info",
                                        logging.WARNING: "warning", logging.ERROR: "error",
                                        logging.CRITICAL: "critical"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {"at": round(record.created, 6), "level": self.LEVELS.get(record.levelno, "?"),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, log_format: str) -> None:
    """`level`: debug, info, warning or error; `log_format`: text or json. Writes to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
