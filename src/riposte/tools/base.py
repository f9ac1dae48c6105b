"""The shape every server-side (built-in) tool shares, so the turn loop treats them alike.

A tool says what the model sees (a chat function definition), what output item announces a call,
which progress events the item goes through, and how a call runs. The stream state machine owns
the item's id, output_index and sequence numbers; the tool never builds events itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from riposte.engine.stream_state import ToolCall


@dataclass(frozen=True)
class ToolRun:
    """The outcome of one server-side call."""

    # The finished output item's fields (type, status and the tool's own fields; no id).
    item: dict[str, Any]
    # What goes back to the model as the tool message content.
    tool_message_content: str | list[dict[str, Any]]
    failed: bool = False
    # The phase event announcing the end, e.g. "completed"; None where the item type has none.
    final_phase: str | None = "completed"
    # file id -> filename for ids the model may cite as <|file-id|> (file_search only).
    citable_files: dict[str, str] = field(default_factory=dict)


class ServerTool(Protocol):
    @property
    def function_name(self) -> str:
        """The function name the model calls."""
        ...

    @property
    def item_type(self) -> str:
        """The output item type, e.g. `file_search_call`; events are `response.<item_type>.<phase>`."""
        ...

    @property
    def id_prefix(self) -> str: ...

    @property
    def progress_phases(self) -> tuple[str, ...]:
        """Phases announced before the call runs, e.g. ("in_progress", "searching")."""
        ...

    def chat_definition(self) -> dict[str, Any]: ...

    def echoed_config(self) -> dict[str, Any]:
        """The tool as the response object echoes it, every field concrete."""
        ...

    def pending_item(self, call: ToolCall) -> dict[str, Any]:
        """The item's fields while the call runs (status in_progress; no id)."""
        ...

    async def run(self, call: ToolCall) -> ToolRun:
        """Execute the call. Failures are returned as a failed ToolRun, not raised."""
        ...
