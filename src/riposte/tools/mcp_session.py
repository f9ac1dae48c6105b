"""One MCP client session for one server, for the length of one turn, with the official `mcp` SDK.

The SDK's transports are structured-concurrency context managers: they must be entered and left
by the same task. A turn is prepared in the request handler and streamed from another task, so
each session lives on a task of its own, and the turn talks to it through a queue. The session
opens on first use (a turn that reuses an earlier listing and never calls a tool never connects),
speaks streamable HTTP and falls back to the older SSE transport, bounds every step with a
timeout, and is closed by `aclose()` whichever way the turn ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from riposte.tools.mcp_failure import McpFailure

logger = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[ClientSession], Awaitable[Any]]
_CLOSE_GRACE_SECONDS = 5.0
# A session nobody has used for this long is closed even if its turn never said so (a safety net:
# turns close their sessions on every path they know of).
_IDLE_SECONDS = 900.0


class McpConnection:
    def __init__(self, url: str, headers: dict[str, str], timeout_seconds: float) -> None:
        self.url = url
        self._headers = headers
        self._timeout = timeout_seconds
        self._queue: asyncio.Queue[tuple[Operation, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # The SDK turns an HTTP error status into a generic JSON-RPC error; this keeps the status.
        self._http_status: int | None = None

    async def list_tools(self) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            page: mcp_types.ListToolsResult = await self._run(_list_page(cursor))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        result: mcp_types.CallToolResult = await self._run(lambda s: s.call_tool(name, arguments))
        return result

    async def aclose(self) -> None:
        """End the session (idempotent); a server that does not let go is cut off after a grace period."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(None)
        done, _ = await asyncio.wait({task}, timeout=_CLOSE_GRACE_SECONDS)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- the session's own task ----------------------------------------------------------------

    async def _run(self, operation: Operation) -> Any:
        if self._closed:
            raise McpFailure("mcp_protocol_error", -32000, "the MCP session is closed")
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            self._task = loop.create_task(self._serve(), name=f"mcp-session {self.url}")
        assert self._ready is not None
        await asyncio.shield(self._ready)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((operation, future))
        return await future

    async def _serve(self) -> None:
        assert self._ready is not None
        current: asyncio.Future[Any] | None = None
        try:
            async with AsyncExitStack() as stack:
                session = await self._connect(stack)
                self._ready.set_result(None)
                while (request := await asyncio.wait_for(self._queue.get(), _IDLE_SECONDS)) is not None:
                    operation, current = request
                    await self._answer(session, operation, current)
                    current = None
        except BaseException as exc:  # the transport died: whoever waits gets the reason
            failure = self._failure(exc)
            for future in (self._ready, current):
                if future is not None and not future.done():
                    future.set_exception(failure)
            self._fail_queued(failure)
            if not isinstance(exc, Exception):
                raise

    async def _answer(self, session: ClientSession, operation: Operation, future: asyncio.Future[Any]) -> None:
        self._http_status = None
        try:
            with anyio.fail_after(self._timeout):
                result = await operation(session)
        except Exception as exc:
            if not future.done():
                future.set_exception(self._failure(exc))
        else:
            if not future.done():
                future.set_result(result)

    def _fail_queued(self, failure: McpFailure) -> None:
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if request is not None and not request[1].done():
                request[1].set_exception(failure)

    async def _connect(self, stack: AsyncExitStack) -> ClientSession:
        """Streamable HTTP first; a server that does not speak it gets the SSE transport."""
        try:
            return await self._open(AsyncExitStack(), stack, streamable=True)
        except McpFailure as failure:
            if failure.kind != "http_error" or failure.code not in (400, 404, 405):
                raise
            logger.info("MCP server %s does not speak streamable HTTP (%s); trying SSE", self.url, failure)
        return await self._open(AsyncExitStack(), stack, streamable=False)

    async def _open(self, attempt: AsyncExitStack, outer: AsyncExitStack, streamable: bool) -> ClientSession:
        try:
            async with attempt:
                read, write = await attempt.enter_async_context(self._transport(attempt, streamable))
                session = await attempt.enter_async_context(ClientSession(read, write))
                # Only the handshake is timed here: a cancel scope around entering the transports
                # would end before theirs, which structured concurrency forbids.
                with anyio.fail_after(self._timeout):
                    await session.initialize()
                outer.push_async_exit(attempt.pop_all())
                return session
        except Exception as exc:
            raise self._failure(exc) from exc

    def _transport(self, stack: AsyncExitStack, streamable: bool) -> Any:
        timeout = httpx2.Timeout(self._timeout, read=max(self._timeout, 60.0))
        if not streamable:
            return sse_client(self.url, headers=self._headers, timeout=self._timeout,
                              sse_read_timeout=max(self._timeout, 60.0), httpx_client_factory=self._sse_http)
        http = httpx2.AsyncClient(headers=self._headers, timeout=timeout,
                                  event_hooks={"response": [self._note_status]})
        stack.push_async_callback(http.aclose)
        return streamable_http_client(self.url, http_client=http)

    def _sse_http(self, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                  auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth,
                                  event_hooks={"response": [self._note_status]})

    async def _note_status(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._http_status = response.status_code

    def _failure(self, exc: BaseException) -> McpFailure:
        failure = _failure(exc)
        if self._http_status is not None and failure.kind == "mcp_protocol_error":
            return McpFailure("http_error", self._http_status, f"the MCP server answered HTTP {self._http_status}")
        return failure


def _list_page(cursor: str | None) -> Operation:
    params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
    return lambda session: session.list_tools(params=params)


def _failure(exc: BaseException) -> McpFailure:
    """The most telling failure inside `exc` (task groups wrap errors in exception groups)."""
    if isinstance(exc, McpFailure):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        failures = [_failure(inner) for inner in exc.exceptions]
        return next((f for f in failures if f.kind == "http_error"), failures[0])
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        return McpFailure("http_error", status, f"the MCP server answered HTTP {status}")
    if isinstance(exc, httpx2.ConnectError | ConnectionError):
        return McpFailure("http_error", 502, f"could not connect to the MCP server: {exc}")
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return McpFailure("http_error", 504, "the MCP server did not answer in time")
    if isinstance(exc, MCPError):
        return McpFailure("mcp_protocol_error", exc.error.code, exc.error.message)
    if isinstance(exc, asyncio.CancelledError):
        return McpFailure("mcp_protocol_error", -32000, "the MCP session was cancelled")
    return McpFailure("mcp_protocol_error", -32603, f"{type(exc).__name__}: {exc}")
