"""WebSocket mode: `/v1/responses` over one long-lived connection (OpenAI's WebSocket mode,
openai-python's `client.responses.connect()`).

Each `response.create` event runs one turn exactly as `POST /v1/responses` with `stream: true`
does (api/turn_start.py, then `Turn.event_batches()`), and its events go out one message each, the
same JSON as the SSE `data:` lines. What the connection adds:

- lanes: a `response.create` with a `stream_id` runs after the earlier ones of its lane, and
  lanes run side by side (without a `stream_id`, a request is on the default lane); its events
  carry the `stream_id`;
- `store: false` responses that ended on this connection can be continued with
  `previous_response_id` (engine/recent_responses.py); a request that fails forgets the one it
  continued, as OpenAI does, so the client starts that chain again with the full input;
- a request that is refused gets an `error` event (the HTTP status and error envelope it would
  have had), and the connection stays open; the `error` event a failing turn sends before
  `response.failed` takes the same shape (with its `sequence_number`), as openai-python's
  `ResponseWsError` reads it;
- `generate: false` (a warm-up): the turn is prepared and kept without calling the model;
- limits: `websocket.max_pending_responses` requests queued or running, the request size limit
  per message (larger ones close the connection with 1009, in uvicorn), an idle timeout and a
  maximum connection time (close code 1000 with the reason), pings (uvicorn);
- shutdown (SIGTERM): new requests get a 503 `server_shutting_down` error event, running ones
  finish within the grace period, then the connection closes with 1001 (api/websocket_shutdown.py).

Authentication is the HTTP one: the upgrade needs the same `Authorization` header (a refused one
gets the same 401 before the upgrade), the credential is checked again at every message (a
revoked key closes the connection with 1008), and every request counts against its key's limits.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from contextlib import aclosing, suppress
from typing import Any

import anyio
import orjson
from anyio import CancelScope
from anyio.abc import TaskGroup
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from riposte.api.body import decode_json_object, validated
from riposte.api.limits import LIMITER_SCOPE_KEY
from riposte.api.middleware import CLIENT_CLOSED_REQUEST, SERVER_CUT_SHORT, log_request_line, new_request_id
from riposte.api.turn_start import start_turn
from riposte.api.websocket_events import (
    create_fields,
    error_event,
    event_type,
    lane_of,
    on_lane,
    stream_error_event,
)
from riposte.api.websocket_shutdown import take_shutdown_notice
from riposte.auth.limiter import RequestLimiter
from riposte.auth.principal import Principal, current_principal
from riposte.engine.recent_responses import RecentResponses
from riposte.engine.request import CreateResponseRequest
from riposte.engine.turn import Turn
from riposte.errors import AuthenticationError, RateLimitError, RiposteError, ShuttingDownError
from riposte.observability import metrics
from riposte.observability.request_record import RequestRecord, current_request
from riposte.observability.turn_observer import report_failure
from riposte.services import Services
from riposte.store.responses import StoredResponse

logger = logging.getLogger(__name__)
router = APIRouter()

ROUTE = "/v1/responses"
# Close codes (RFC 6455): normal, going away (the server shuts down), a policy violation (the
# credential stopped verifying), an unexpected server error.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
SHUTTING_DOWN = "server shutting down"
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011


@router.websocket("/responses")
async def responses_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    principal = current_principal.get()
    limiter = websocket.scope.get(LIMITER_SCOPE_KEY)
    await ResponsesConnection(websocket, services, principal, limiter).serve()


def _shutting_down() -> ShuttingDownError:
    return ShuttingDownError("The server is shutting down and takes no new responses on this connection; "
                             "open a new connection (to another replica) to continue.")


class _Gone(Exception):
    """The client went away while an event was being sent."""


class ResponsesConnection:
    def __init__(self, websocket: WebSocket, services: Services, principal: Principal,
                 limiter: RequestLimiter | None) -> None:
        self._websocket = websocket
        self._services = services
        self._view = services.owned_by(principal.owner)
        self._principal = principal
        self._authorization = websocket.headers.get("authorization")
        self._limiter = limiter
        self._settings = services.settings.websocket
        self._recent = RecentResponses(self._settings.recent_responses)
        self._lanes: dict[str | None, deque[dict[str, Any]]] = {}
        self._pending = 0
        self._gone = False
        self._last_activity = time.monotonic()
        self._send_lock = anyio.Lock()
        # Set by the server at shutdown (None when it does not tell): the connection then drains.
        self._shutdown = take_shutdown_notice(websocket.scope)
        self._draining = False
        self._receiving: CancelScope | None = None

    async def serve(self) -> None:
        await self._websocket.accept()
        metrics.WEBSOCKET_CONNECTIONS.inc()
        try:
            async with anyio.create_task_group() as lanes:
                watch = CancelScope()
                lanes.start_soon(self._drain_at_shutdown, watch)
                ending = await self._read(lanes)
                watch.cancel()
                if ending is None:  # the client left (or must leave): its running turns end now
                    lanes.cancel_scope.cancel()
            if ending is not None:
                await self._websocket.close(*ending)
        except anyio.get_cancelled_exc_class():
            if not self._draining:
                raise
            # The grace period ran out and uvicorn cancelled the connection (it logs that): the
            # running turns ended `cancelled`. Close with the reason, not in a traceback.
            with CancelScope(shield=True):
                await self._close_quietly(CLOSE_GOING_AWAY, SHUTTING_DOWN)
        except Exception:
            logger.exception("WebSocket connection on %s failed", ROUTE)
            await self._close_quietly(CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            metrics.WEBSOCKET_CONNECTIONS.dec()

    async def _drain_at_shutdown(self, watch: CancelScope) -> None:
        """When the server shuts down: refuse new requests, and close once the running ones end."""
        if self._shutdown is None:
            return
        with watch:
            await self._shutdown.wait()
            self._draining = True
            self._wake_reader()

    def _wake_reader(self) -> None:
        if self._receiving is not None:
            self._receiving.cancel()

    async def _read(self, lanes: TaskGroup) -> tuple[int, str] | None:
        """Take messages until the connection ends; the close code and reason to send, or None
        when the connection is gone (or must go at once)."""
        deadline = time.monotonic() + self._settings.max_connection_seconds
        idle_timeout = self._settings.idle_timeout_seconds
        while True:
            if self._draining and self._pending == 0:
                return CLOSE_GOING_AWAY, SHUTTING_DOWN
            now = time.monotonic()
            if now >= deadline:
                await self._connection_limit_reached()
                return CLOSE_NORMAL, "connection time limit reached"
            wait = min(deadline - now, idle_timeout)
            if self._pending == 0:
                idle_left = self._last_activity + idle_timeout - now
                if idle_left <= 0:
                    return CLOSE_NORMAL, "idle timeout"
                wait = min(wait, idle_left)
            message: Mapping[str, Any] | None = None
            with anyio.move_on_after(wait) as self._receiving:
                message = await self._websocket.receive()
            self._receiving = None
            if message is None:
                continue
            if message["type"] == "websocket.disconnect":
                self._gone = True
                return None
            self._last_activity = time.monotonic()
            try:
                if not await self._still_authenticated():
                    return None
                await self._take(message, lanes)
            except _Gone:
                self._gone = True
                return None

    async def _still_authenticated(self) -> bool:
        """The credential the connection opened with, checked again as each HTTP request's is."""
        try:
            self._principal = await self._services.auth.principal(self._authorization)
        except AuthenticationError as error:
            await self._send(error_event(error, None))
            await self._close_quietly(CLOSE_POLICY_VIOLATION, "the credential is no longer valid")
            return False
        return True

    async def _take(self, message: Mapping[str, Any], lanes: TaskGroup) -> None:
        """Queue a `response.create` on its lane; a message that names no lane, or one past the
        pending limit, is answered at once with an error event."""
        text = message.get("text")
        raw: str | bytes = text if isinstance(text, str) else message.get("bytes") or b""
        lane: str | None = None
        try:
            data = decode_json_object(raw, self._services.settings.max_json_depth, "The WebSocket message",
                                      param="event")
            lane = lane_of(data)
            if self._draining or self._services.background.draining:  # the latter: SIGTERM came first
                raise _shutting_down()
            if self._pending >= self._settings.max_pending_responses:
                raise RateLimitError(f"This connection already has {self._pending} responses queued or running "
                                     f"(limit {self._settings.max_pending_responses}).", retry_after=1)
        except RiposteError as error:
            await self._send(error_event(error, lane))
            return
        self._pending += 1
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            lanes.start_soon(self._run_lane, lane, queue)
        queue.append(data)

    async def _run_lane(self, lane: str | None, queue: deque[dict[str, Any]]) -> None:
        """The lane's requests in order. No await between finding the queue empty and dropping the
        lane, so a request queued meanwhile is never left behind."""
        while queue:
            data = queue.popleft()
            try:
                if self._draining:  # queued, not started: refused as a new request would be
                    await self._send_quietly(error_event(_shutting_down(), lane))
                elif not self._gone:
                    await self._create(lane, data)
            finally:
                self._pending -= 1
                self._last_activity = time.monotonic()
                if self._draining and self._pending == 0:
                    self._wake_reader()  # to close the connection now
        del self._lanes[lane]

    async def _create(self, lane: str | None, data: dict[str, Any]) -> None:
        record = RequestRecord(request_id=new_request_id(), method="WS", path=ROUTE)
        token = current_request.set(record)
        started = time.perf_counter()
        status = 200
        try:
            await self._run_request(lane, data)
        except RiposteError as error:
            status = error.status_code
            self._forget_continued(data)
            if status >= 500:
                report_failure(error, record.provider, record.response_id)
            await self._send(error_event(error, lane))
        except _Gone:
            self._gone = True
            status = CLIENT_CLOSED_REQUEST
        except anyio.get_cancelled_exc_class():
            # The client left (its running turns end now), or the shutdown grace period ran out.
            status = CLIENT_CLOSED_REQUEST if self._gone else SERVER_CUT_SHORT
            raise
        except Exception:
            status = 500
            logger.exception("response.create on a WebSocket failed")
            self._forget_continued(data)
            await self._send_quietly(error_event(RiposteError("The server had an error while processing your "
                                                              "request."), lane))
        finally:
            current_request.reset(token)
            log_request_line(ROUTE, record, status, time.perf_counter() - started)

    async def _run_request(self, lane: str | None, data: dict[str, Any]) -> None:
        event_type(data)
        fields, generate = create_fields(data)
        body = validated(fields, CreateResponseRequest)
        self._acquire()
        try:
            turn = await start_turn(body, self._view, self._recent)
            turn.generate = generate
            async with aclosing(turn.event_batches()) as batches:
                async for batch in batches:
                    for event in batch:
                        if event["type"] == "error":
                            event = stream_error_event(event, turn.failure)
                        await self._send(on_lane(event, lane))
        finally:
            self._release()
        self._keep(turn)

    def _keep(self, turn: Turn) -> None:
        """Remember an unstored response that ended well, for later turns on this connection; a
        failed one forgets the response it continued."""
        if turn.response["status"] == "failed":
            self._forget_continued({"previous_response_id": turn.request.previous_response_id})
        elif turn.request.store is False:
            self._recent.remember(StoredResponse(response=turn.response, input_items=turn.input_items,
                                                 messages=turn.conversation))

    def _forget_continued(self, data: dict[str, Any]) -> None:
        previous = data.get("previous_response_id")
        if isinstance(previous, str):
            self._recent.forget(previous)

    def _acquire(self) -> None:
        if self._limiter is not None:
            self._limiter.acquire(self._principal.limit_key, self._principal.limits)

    def _release(self) -> None:
        if self._limiter is not None:
            self._limiter.release(self._principal.limit_key)

    async def _connection_limit_reached(self) -> None:
        error = RiposteError(f"This WebSocket connection reached its limit of "
                             f"{self._settings.max_connection_seconds:g} seconds; open a new one to continue. "
                             "Responses already running finish first.", code="websocket_connection_limit_reached")
        error.status_code, error.error_type = 400, "invalid_request_error"
        await self._send(error_event(error, None))

    async def _send(self, event: dict[str, Any]) -> None:
        text = orjson.dumps(event).decode()
        async with self._send_lock:
            try:
                await self._websocket.send_text(text)
            except (WebSocketDisconnect, OSError, RuntimeError) as exc:
                raise _Gone from exc

    async def _send_quietly(self, event: dict[str, Any]) -> None:
        try:
            await self._send(event)
        except _Gone:
            self._gone = True

    async def _close_quietly(self, code: int, reason: str) -> None:
        with suppress(WebSocketDisconnect, OSError, RuntimeError):
            await self._websocket.close(code, reason)
