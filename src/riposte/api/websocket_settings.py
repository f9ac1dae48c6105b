"""Settings of WebSocket mode (`/v1/responses` over a WebSocket), and what uvicorn needs of them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from riposte.api.websocket_shutdown import PROTOCOL


class WebSocketSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A connection with no response running and no message from the client for this long is closed.
    idle_timeout_seconds: float = Field(default=300.0, gt=0)
    # OpenAI closes a connection after 60 minutes; so does Riposte, after the running responses end.
    max_connection_seconds: float = Field(default=3600.0, gt=0)
    # `response.create` events one connection may have queued or running at once, over all lanes.
    max_pending_responses: int = Field(default=16, ge=1, le=1024)
    # `store: false` responses a connection remembers so that later turns can continue them.
    recent_responses: int = Field(default=16, ge=0, le=1024)
    # Protocol-level keep-alive: a ping this often, and the connection is dropped when no pong
    # comes back within the timeout.
    ping_interval_seconds: float = Field(default=20.0, gt=0)
    ping_timeout_seconds: float = Field(default=20.0, gt=0)


def uvicorn_websocket_options(settings: WebSocketSettings, max_message_bytes: int) -> dict[str, Any]:
    """uvicorn.Config keywords: its sans-I/O `websockets` protocol, draining at shutdown
    (api/websocket_shutdown.py), with the request size limit as the largest message (a larger one
    closes the connection with code 1009) and the keep-alive."""
    return {"ws": PROTOCOL, "ws_max_size": max_message_bytes,
            "ws_ping_interval": settings.ping_interval_seconds, "ws_ping_timeout": settings.ping_timeout_seconds}
