"""What `configure_logging` lets through of uvicorn's WebSocket logging: the `websockets` protocol
uvicorn drives logs under uvicorn's own logger, at debug every handshake header (Authorization
included) and every frame."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from websockets.server import ServerProtocol

from riposte.observability.logs import configure_logging

TOUCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpx2", "httpcore", "aiosqlite", "asyncio",
           "urllib3", "filelock")
SECRET = "sk-riposte-test-4f1c"
HANDSHAKE = (b"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             b"Authorization: Bearer " + SECRET.encode() + b"\r\n\r\n")


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """configure_logging("debug"), its handler writing to a buffer; the process's logging as it
    was afterwards."""
    saved = [(logger, list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
             for logger in map(logging.getLogger, TOUCHED)]
    configure_logging("debug", "text")
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG)  # as uvicorn sets it from its log_level
    buffer = io.StringIO()
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        for logger, handlers, filters, level, propagate in saved:
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.setLevel(level)
            logger.propagate = propagate


def open_a_websocket(logger: logging.Logger) -> None:
    """A real `websockets` server handshake and one text frame, logging to `logger`."""
    protocol = ServerProtocol(logger=logger)
    protocol.receive_data(HANDSHAKE)
    [request] = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    protocol.send_text(b'{"type":"response.created"}')


def test_the_websockets_protocol_trace_stays_out_of_uvicorns_log(debug_log: io.StringIO) -> None:
    open_a_websocket(logging.getLogger("tests.any_other_logger"))
    unfiltered = debug_log.getvalue()
    assert SECRET in unfiltered and "connection open" in unfiltered  # what the library writes
    debug_log.seek(0)
    debug_log.truncate()

    open_a_websocket(logging.getLogger("uvicorn.error"))
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/v1/responses")
    uvicorn_error.info('%s - "WebSocket %s" %d', "127.0.0.1:5000", "/v1/responses", 401)
    uvicorn_error.info("Application startup complete.")
    logged = debug_log.getvalue()
    assert SECRET not in logged and "connection open" not in logged and "TEXT" not in logged
    assert "[accepted]" not in logged
    assert '"WebSocket /v1/responses" 401' in logged and "Application startup complete." in logged
