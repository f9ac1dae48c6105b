"""Retrying a request once when a pooled keep-alive connection turns out to be stale.

An upstream (uvicorn under vLLM, nginx, a cloud load balancer) closes keep-alive connections that
sit idle, and a close that crosses our next request on the wire fails that request before any
byte of the answer arrives. Nothing of it reached the model, so sending it again on a fresh
connection is safe; a failure on a fresh connection, or after the first byte, is never retried.
Both upstream clients use this: aiohttp for streamed chat, httpx2 (under the openai SDK) for the rest.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import httpx2 as httpx
from aiohttp.client_proto import ResponseHandler

from riposte.inference.sse_connections import SseConnector
from riposte.observability.metrics import UPSTREAM_RETRIES

logger = logging.getLogger(__name__)

# The most connections one upstream gets, the SDK's own limit; aiohttp's default of 100 would
# queue the 101st concurrent stream.
MAX_CONNECTIONS = 1000
_MAX_IDLE_CONNECTIONS = 100

# Set by `ReuseTrackingConnector` in the task that asked for a connection: aiohttp awaits the
# connector in the caller's own context, so the caller reads it back after a failure.
_reused_connection: ContextVar[bool] = ContextVar("reused_connection", default=False)

T = TypeVar("T")

# Failures of a connection that was already open: the server closed or reset it.
_AIOHTTP_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
_HTTPX_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def log_retry(url: str, cause: BaseException) -> None:
    parts = urlsplit(url)
    UPSTREAM_RETRIES.labels(f"{parts.scheme}://{parts.netloc}", type(cause).__name__).inc()
    logger.warning("upstream %s: a reused keep-alive connection failed before the answer began (%s: %s); "
                   "retrying once on a fresh connection", url, type(cause).__name__, cause)


class ReuseTrackingConnector(SseConnector):
    """A TCP pool that records, for the asking task, whether it handed out a connection that had
    already carried a request."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._used: weakref.WeakSet[ResponseHandler] = weakref.WeakSet()

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        if protocol is not None:
            reused = protocol in self._used
            _reused_connection.set(reused)
            if not reused:
                self._used.add(protocol)
        return connection


def aiohttp_pools(keepalive_seconds: float, timeout: aiohttp.ClientTimeout) -> tuple[
        aiohttp.ClientSession, aiohttp.ClientSession]:
    """The keep-alive pool, and a pool of fresh connections only, for the one retry."""
    keepalive: dict[str, Any] = {"keepalive_timeout": keepalive_seconds} if keepalive_seconds else {"force_close": True}
    pooled = aiohttp.ClientSession(timeout=timeout, connector=ReuseTrackingConnector(limit=MAX_CONNECTIONS,
                                                                                     **keepalive))
    fresh = aiohttp.ClientSession(timeout=timeout,
                                  connector=SseConnector(limit=MAX_CONNECTIONS, force_close=True))
    return pooled, fresh


async def open_with_one_retry(url: str, attempt: Callable[[aiohttp.ClientSession], Awaitable[T]],
                              pooled: aiohttp.ClientSession, fresh: aiohttp.ClientSession) -> T:
    """`attempt(pooled)`, and `attempt(fresh)` once if a reused connection failed under it.
    `attempt` must end at the response headers: after them, nothing is retried."""
    _reused_connection.set(False)
    try:
        return await attempt(pooled)
    except aiohttp.ClientConnectorError:
        raise  # connecting failed: that was a new connection
    except _AIOHTTP_STALE as exc:
        if not _reused_connection.get():
            raise
        log_retry(url, exc)
    return await attempt(fresh)


class StaleRetryTransport(httpx.AsyncBaseTransport):
    """httpx's transport with the same rule: a request that failed on a reused connection before
    the response headers is sent once more on a fresh connection. httpcore reports through the
    `trace` extension whether it opened a connection for the request."""

    def __init__(self, keepalive_seconds: float) -> None:
        self._pooled = httpx.AsyncHTTPTransport(limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=_MAX_IDLE_CONNECTIONS,
            keepalive_expiry=keepalive_seconds))
        self._fresh = httpx.AsyncHTTPTransport(limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        opened: list[str] = []

        async def trace(event: str, _info: dict[str, Any]) -> None:
            if event.startswith("connection.connect_tcp"):
                opened.append(event)

        request.extensions = {**request.extensions, "trace": trace}
        try:
            return await self._pooled.handle_async_request(request)
        except _HTTPX_STALE as exc:
            if opened:
                raise
            log_retry(str(request.url), exc)
        request.extensions = {k: v for k, v in request.extensions.items() if k != "trace"}
        return await self._fresh.handle_async_request(request)

    async def aclose(self) -> None:
        await self._pooled.aclose()
        await self._fresh.aclose()
