"""Why talking to an MCP server failed. Apart from the session module so that the tool can name
it without importing the `mcp` SDK, which is loaded only when a request uses an MCP server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class McpFailure(Exception):
    """A failure in the shape of an `mcp_call` item's `error`."""

    kind: str  # "http_error" or "mcp_protocol_error"
    code: int
    message: str

    def __str__(self) -> str:
        return self.message

    def as_item_error(self) -> dict[str, Any]:
        return {"type": self.kind, "code": self.code, "message": self.message}
