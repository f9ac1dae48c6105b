"""Pure ASGI middleware: request size limit and the replay scope. Pure ASGI, not
BaseHTTPMiddleware, because the latter buffers and re-wraps streaming bodies."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riposte.api.errors import error_response
from riposte.errors import PayloadTooLargeError
from riposte.inference.scope import replay_scope, scope_from_headers


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths with a limit of their own, e.g. file uploads.
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes.")
        await error_response(error)(scope, receive, send)


class _TooLarge(Exception):
    pass


class ReplayScope:
    """Carries `X-Riposte-Replay-Scope` into every upstream call made for the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = replay_scope.set(scope_from_headers(headers))
        try:
            await self.app(scope, receive, send)
        finally:
            replay_scope.reset(token)
