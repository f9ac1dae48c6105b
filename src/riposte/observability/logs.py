"""Log configuration: `--log-format text|json` and `--log-level`, for Riposte and uvicorn alike.

Structured fields travel in `extra={"fields": {...}}`; the JSON format puts them at the top level
of the line, the text format appends them as `key=value`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        return text


def _text_value(value: Any) -> str:
    text = str(value)
    return orjson.dumps(text).decode() if (" " in text or not text) else text


def _package_directory(name: str) -> Path | None:
    """Where an installed package's sources live, found without importing it."""
    spec = importlib.util.find_spec(name)
    locations = spec.submodule_search_locations if spec is not None else None
    return Path(next(iter(locations))) if locations else None


class UvicornWebSocketChatter(logging.Filter):
    """Drops what uvicorn logs for every WebSocket it serves: its `"WebSocket /v1/responses"
    [accepted]` line, and everything below WARNING of the `websockets` protocol it drives under
    uvicorn's logger ("connection open", and at debug every frame and handshake header, the
    `Authorization` one included). riposte.access writes a line for each `response.create`; a
    refused upgrade keeps uvicorn's own line (`"WebSocket /v1/responses" 401`), the only one it gets."""

    def __init__(self) -> None:
        super().__init__()
        self._websockets = _package_directory("websockets")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if isinstance(record.msg, str) and record.msg.endswith('" [accepted]'):
            return False
        return self._websockets is None or not Path(record.pathname).is_relative_to(self._websockets)


_WEBSOCKET_CHATTER = UvicornWebSocketChatter()


def configure_logging(level: str = "info", log_format: LogFormat = "text") -> None:
    """One handler on stderr for every logger, uvicorn's included (they propagate to the root)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.error").addFilter(_WEBSOCKET_CHATTER)  # once: addFilter skips a repeat
    # riposte.access writes the request line; uvicorn's own would say the same with less.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    # Third-party chatter at debug would drown the request lines.
    for noisy in ("httpx", "httpx2", "httpcore", "aiosqlite", "asyncio", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
