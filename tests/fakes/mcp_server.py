"""Real MCP servers for the tests: the `mcp` SDK's MCPServer (FastMCP) on a loopback port.

`boiling_point_server()` serves exactly the two tools of the reference recordings, with the
docstring the recorded tool definition carries, so a listing from it reproduces the recorded
upstream request. `toolbox_server()` adds tools that fail, hang or are read-only. Every HTTP
request reaching a server is kept (method, headers, JSON-RPC method), so tests can see headers
and bearer tokens arrive, count listings and sessions, and see sessions being closed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def boiling_point_server() -> MCPServer:
    server = MCPServer("boiling-point", log_level="CRITICAL")

    @server.tool()
    def greet_everyone(url: str) -> str:
        return "Hello, world!"

    @server.tool()
    def get_boiling_point(liquid_name: str, celsius: bool = True) -> int:
        """
        Returns the boiling point of a liquid in Celsius or Fahrenheit.

        :param liquid_name: The name of the liquid
        :param celsius: Whether to return the boiling point in Celsius
        :return: The boiling point of the liquid in Celcius or Fahrenheit
        """
        if liquid_name.lower() == "myawesomeliquid":
            return -100 if celsius else -148
        return -1

    return server


def toolbox_server() -> MCPServer:
    server = boiling_point_server()

    @server.tool()
    def explode(reason: str) -> str:
        """Always fails."""
        raise ValueError(f"exploded: {reason}")

    @server.tool()
    async def take_forever() -> str:
        """Never answers in time."""
        await asyncio.sleep(30)
        return "too late"

    @server.tool()
    def recite(line: str, times: int) -> str:
        """Says a line over and over (a long tool output)."""
        return " ".join([line] * times)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def read_thermometer() -> str:
        """Reads the room temperature."""
        return "21"

    return server


@dataclass(frozen=True)
class SeenRequest:
    method: str
    headers: dict[str, str]
    rpc_method: str | None


@dataclass
class _Recorder:
    """ASGI middleware keeping every request; with `token`, anything without it gets a 401."""

    app: ASGIApp
    token: str | None = None
    seen: list[SeenRequest] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, replay = await _buffered(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append(SeenRequest(scope["method"], headers, _rpc_method(body)))
        if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
            return
        await self.app(scope, replay, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    first: Message = await receive()
    message = first
    while message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
        message = await receive()
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent and first["type"] == "http.request":
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _rpc_method(body: bytes) -> str | None:
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        return None
    return parsed.get("method") if isinstance(parsed, dict) else None


class McpTestServer:
    """`with McpTestServer(boiling_point_server()) as mcp:` then give tools `mcp.url`."""

    def __init__(self, server: MCPServer, *, token: str | None = None, sse: bool = False) -> None:
        app = server.sse_app() if sse else server.streamable_http_app()
        self._recorder = _Recorder(app, token)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/{'sse' if sse else 'mcp'}"
        config = uvicorn.Config(self._recorder, log_level="critical", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"mcp-test-{self.port}", daemon=True)

    @property
    def seen(self) -> list[SeenRequest]:
        return self._recorder.seen

    def rpc_calls(self, method: str) -> int:
        return sum(1 for request in self.seen if request.rpc_method == method)

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> McpTestServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> McpTestServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
