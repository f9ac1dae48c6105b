"""`GET /ready`: whether a load balancer should send this process new requests.

Not ready while the process drains after SIGTERM, nor while its database does not answer. `/health`
stays the liveness check: it says only that the process serves HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from riposte.api.jsonresponse import json_response

logger = logging.getLogger(__name__)
_DATABASE_TIMEOUT_SECONDS = 2.0


class Readiness(BaseModel):
    status: str


async def ready(request: Request) -> Response:
    services = request.app.state.services
    if services.background.draining:
        return json_response({"status": "draining"}, status_code=503)
    try:
        async with asyncio.timeout(_DATABASE_TIMEOUT_SECONDS), services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("not ready: the database does not answer (%s)", type(exc).__name__)
        return json_response({"status": "database unreachable"}, status_code=503)
    return json_response({"status": "ready"})


def on_termination(callback: Callable[[], None]) -> None:
    """Call `callback` as soon as SIGTERM or SIGINT arrives, before the handler already installed
    (uvicorn's, which closes the listener and starts the graceful shutdown). Only the main thread
    may set signal handlers: elsewhere (an app run by a test client) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def chained(number: int, frame: Any, previous: Callable[[int, Any], Any] = previous) -> None:
            try:
                callback()
            except Exception:  # the process must still shut down
                logger.exception("the termination callback failed; shutting down anyway")
            previous(number, frame)

        signal.signal(signum, chained)
