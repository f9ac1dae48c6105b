"""The one place where exceptions become HTTP responses in the OpenAI error envelope."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riposte.errors import SERVER_SHUT_DOWN, InvalidRequestError, NotFoundError, RiposteError, ShuttingDownError
from riposte.observability.request_record import current_request
from riposte.observability.turn_observer import report_failure

logger = logging.getLogger(__name__)


def error_response(error: RiposteError) -> Response:
    headers = error.headers()
    if error.should_retry is not None:
        headers["x-should-retry"] = "true" if error.should_retry else "false"
    return Response(orjson.dumps(error.envelope()), status_code=error.status_code, media_type="application/json",
                    headers=headers)


def invalid_request_from_validation(exc: ValidationError | RequestValidationError) -> InvalidRequestError:
    """Turn the first pydantic error into a message that names the parameter."""
    error: Any = exc.errors()[0]
    location = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    param = _param_path(location)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return InvalidRequestError(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if kind == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return InvalidRequestError(f"Invalid value for '{param}': {error.get('msg', 'invalid')}.", param=param,
                               code="invalid_value")


def _param_path(location: list[str]) -> str:
    path = ""
    for piece in location:
        if piece.isdigit():
            path += f"[{piece}]"
        elif "[" in piece or piece in ("str", "list[dict[str,any]]", "dict[str,any]"):
            continue  # pydantic's union-member labels are not part of the client's parameter
        else:
            path += f".{piece}" if path else piece
    return path or "body"


def install_error_handlers(app: FastAPI) -> None:
    async def on_riposte_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RiposteError)
        if exc.status_code >= 500:
            record = current_request.get()
            report_failure(exc, record.provider if record else None, record.response_id if record else None)
        return error_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return error_response(invalid_request_from_validation(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (404, 405):
            # A method a path does not serve is as unknown as a path nobody serves
            # (`POST /v1/responses/compact` would otherwise be a 405 from `/responses/{id}`).
            return error_response(NotFoundError(f"Unknown route: {request.method} {request.url.path}"))
        error = RiposteError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        error.code = "not_found" if exc.status_code == 404 else None
        return error_response(error)

    app.add_exception_handler(RiposteError, on_riposte_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


class ErrorBoundary:
    """Turns an unexpected exception into a 500 in the error envelope, and keeps the connection.

    Starlette's own last-resort handler sends its 500 and then re-raises, so that servers can log
    it; uvicorn answers an exception from an application whose response has started by closing the
    connection. The client was not told (no `Connection: close`), so its next request on that
    keep-alive connection met a reset. Here the exception ends with the response: logged, answered,
    and the connection stays usable. Only a response already under way when the error came, whose
    body is broken for good, still ends its connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            # Only the server cancels a request from outside (a client that leaves does not stop
            # one): the shutdown grace period ran out. A client still waiting is told so in the
            # envelope, retryable elsewhere, rather than by uvicorn's plain-text 500.
            if not started:
                with contextlib.suppress(Exception):
                    await error_response(ShuttingDownError(SERVER_SHUT_DOWN))(scope, receive, send)
            raise
        except ClientDisconnect:
            # The client left while its body was being read: nobody to answer, nothing went wrong
            # here (the request log says 499).
            return
        except Exception as exc:
            if started:
                raise
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            error = RiposteError("The server had an error while processing your request.")
            await error_response(error)(scope, receive, send)
