"""Pure ASGI middleware: the request log, the request size limit, control characters in URLs and
the replay scope. Pure ASGI, not BaseHTTPMiddleware, because the latter buffers and re-wraps
streaming bodies."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riposte.api.errors import error_response
from riposte.errors import InvalidRequestError, PayloadTooLargeError
from riposte.inference.scope import replay_scope, scope_from_headers
from riposte.observability import metrics
from riposte.observability.request_record import RequestRecord, current_request
from riposte.param_path import has_control_characters

access_logger = logging.getLogger("riposte.access")
# The status a request's log line and metrics give when its response did not reach its end: the
# client went away first (nginx's 499), or the server cut it at shutdown after the grace period.
CLIENT_CLOSED_REQUEST = 499
SERVER_CUT_SHORT = 503
# A client's own request id is echoed only when it is a plain token: it ends up in log lines.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class RequestLog:
    """One structured line and the HTTP metrics per request, written when the body (the whole
    stream, for SSE) has been sent; every response carries `x-request-id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(request_id=_request_id(scope), method=scope["method"], path=scope["path"])
        request_id_header = (b"x-request-id", record.request_id.encode())
        status = 500
        sent_all = client_left = False
        started = time.perf_counter()

        async def watching_receive() -> Message:
            nonlocal client_left
            message = await receive()
            if message["type"] == "http.disconnect" and not sent_all:
                client_left = True
            return message

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, sent_all, client_left
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            try:
                await send(message)
            except OSError:  # the connection is gone (uvicorn's ClientDisconnected is one)
                client_left = True
                raise
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                sent_all = True

        token = current_request.set(record)
        try:
            await self.app(scope, watching_receive, send_with_request_id)
        except BaseException as exc:
            if not sent_all and isinstance(exc, anyio.get_cancelled_exc_class()) and not client_left:
                status = SERVER_CUT_SHORT  # the shutdown grace period ran out mid-response
            raise
        finally:
            current_request.reset(token)
            if client_left and not sent_all:
                status = CLIENT_CLOSED_REQUEST
            _log_request(scope, record, status, time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(text):
                return text
    return new_request_id()


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def _route_template(scope: Scope) -> str:
    """`/v1/responses/{response_id}`, not the path: metric labels must stay few. Built from the
    path and the matched path parameters, which every Starlette router leaves in the scope."""
    if "endpoint" not in scope:
        return "unmatched"
    names = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    return "/".join(f"{{{names[segment]}}}" if segment in names else segment
                    for segment in scope["path"].split("/"))


def _log_request(scope: Scope, record: RequestRecord, status: int, seconds: float) -> None:
    log_request_line(_route_template(scope), record, status, seconds)


def log_request_line(route: str, record: RequestRecord, status: int, seconds: float) -> None:
    """The request's log line and HTTP metrics (also one per `response.create` over a WebSocket)."""
    metrics.HTTP_REQUESTS.labels(route, record.method, str(status)).inc()
    metrics.HTTP_SECONDS.labels(route, record.method).observe(seconds)
    fields = {**record.fields(), "status": status, "duration_ms": round(seconds * 1000, 1)}
    level = logging.WARNING if status >= 500 or record.error else logging.INFO
    access_logger.log(level, "%s %s %d", record.method, record.path, status, extra={"fields": fields})


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
        error = PayloadTooLargeError(f"The request body exceeds the limit of {limit} bytes.", param="body")
        await error_response(error)(scope, receive, send)


class _TooLarge(Exception):
    pass


class PrintableUrl:
    """Ids in paths and values in query strings never hold control characters.

    Every id the server issues is printable, so such a URL names nothing; and PostgreSQL cannot
    even compare a NUL, so without this check `GET /v1/responses/resp_%00` was a 500 there and a
    404 on SQLite. Refusing it here answers the same on both, before any query runs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            error = _control_characters_in_url(scope)
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _control_characters_in_url(scope: Scope) -> InvalidRequestError | None:
    path: str = scope["path"]
    if has_control_characters(path):
        return InvalidRequestError("The URL path must not contain control characters.", param="path",
                                   code="invalid_value")
    query = scope.get("query_string", b"").decode("latin-1")
    if not has_control_characters(unquote(query)):
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if has_control_characters(key) or has_control_characters(value):
            return InvalidRequestError(f"Query parameter '{key}' must not contain control characters.",
                                       param=key, code="invalid_value")
    return InvalidRequestError("The query string must not contain control characters.", param="query",
                               code="invalid_value")


class ReplayScope:
    """Carries `X-Riposte-Replay-Scope` into every upstream call made for the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # a WebSocket's scope covers all its turns
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = replay_scope.set(scope_from_headers(headers))
        try:
            await self.app(scope, receive, send)
        finally:
            replay_scope.reset(token)
