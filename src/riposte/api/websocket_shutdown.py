"""SIGTERM and WebSocket connections: uvicorn's graceful shutdown, extended to WebSockets.

At shutdown uvicorn asks each open connection to end (`shutdown()` on its protocol). HTTP
requests then get `timeout_graceful_shutdown` to finish, but uvicorn's WebSocket protocol closes
at once with 1012, so a response running on the socket would end `cancelled`.
`DrainingWebSocketProtocol` is uvicorn's own protocol with one change: when the application has
taken the `riposte.shutdown` ASGI extension for the connection, `shutdown()` tells it and leaves
the closing to it. The application (api/websocket.py) then refuses new `response.create` events,
lets the running responses finish, and closes with 1001 (going away). uvicorn still waits for the
connection within the same grace period, and cancels what is left after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# The ASGI extension's name in `scope["extensions"]`; its value is a dict holding the event the
# server sets at shutdown, and `accepted`, which the application sets to drain the connection.
EXTENSION = "riposte.shutdown"
# uvicorn.Config(ws=...): the protocol class, as an import string that worker processes resolve.
PROTOCOL = f"{__name__}:DrainingWebSocketProtocol"


class DrainingWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown: dict[object, object] = {"requested": asyncio.Event(), "accepted": False}

    async def run_asgi(self) -> None:
        extensions = self.scope.get("extensions")
        if extensions is not None:
            extensions[EXTENSION] = self._shutdown
        await super().run_asgi()

    def shutdown(self) -> None:
        draining = self._shutdown["accepted"] and self.handshake_complete and not self.close_sent
        if not draining or self.disconnected:
            super().shutdown()
            return
        requested = self._shutdown["requested"]
        assert isinstance(requested, asyncio.Event)
        requested.set()


def take_shutdown_notice(scope: MutableMapping[str, Any]) -> asyncio.Event | None:
    """For the application: say that it drains this connection itself at shutdown, and get the
    event the server sets then; None when the server does not offer it (the connection is then
    closed at shutdown by the server)."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    if not isinstance(extension, dict) or not isinstance(extension.get("requested"), asyncio.Event):
        return None
    extension["accepted"] = True
    requested: asyncio.Event = extension["requested"]
    return requested
