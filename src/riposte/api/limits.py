"""The per-key request limits as ASGI middleware; a stream counts until its last byte is sent."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from riposte.api.errors import error_response
from riposte.auth.limiter import RequestLimiter
from riposte.auth.principal import current_principal
from riposte.errors import RateLimitError

# Where a WebSocket connection finds the limiter its requests are counted by.
LIMITER_SCOPE_KEY = "riposte.request_limiter"


class RequestLimits:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limiter = RequestLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # A connection is not a request: each `response.create` on it is counted (api/websocket.py).
            scope[LIMITER_SCOPE_KEY] = self.limiter
            await self.app(scope, receive, send)
            return
        principal = current_principal.get()
        limits = principal.limits
        if scope["type"] != "http" or (limits.max_concurrent_requests is None and limits.requests_per_minute is None):
            await self.app(scope, receive, send)
            return
        try:
            self.limiter.acquire(principal.limit_key, limits)
        except RateLimitError as error:
            await error_response(error)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.release(principal.limit_key)
