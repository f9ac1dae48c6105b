"""The shape every server-side (built-in) tool shares, so the turn loop treats them alike.

A tool says what the model sees (chat function definitions), which output items it announces
before the first model call (a listing), how each call shows in the stream (its item, progress
phases, streamed arguments, or an item that waits for the client, such as an approval request),
and how a call runs. The stream state machine owns every item id, output_index and sequence
number; a tool only ever hands over item fields without ids, and never builds events itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from riposte.engine.stream_state import ArgumentStream, ToolCall

__all__ = [
    "ArgumentStream", "CallPlan", "ResumedCall", "ServerTool", "SimpleServerTool", "ToolCall", "ToolContext",
    "ToolFactory", "ToolListing", "ToolRun",
]


@dataclass(frozen=True)
class ToolRun:
    """The outcome of one server-side call."""

    # The finished output item's fields (type, status and the tool's own fields; no id). A failure
    # is reported here (a failed status or an `error` field), never raised.
    item: dict[str, Any]
    # What goes back to the model as the tool message content.
    tool_message_content: str | list[dict[str, Any]]
    failed: bool = False
    # The phase event announcing the end, e.g. "completed" or "failed"; None where the item type has none.
    final_phase: str | None = "completed"
    # file id -> filename for ids the model may cite as <|file-id|> (file_search only).
    citable_files: dict[str, str] = field(default_factory=dict)
    # url -> title of sources the model may cite by linking to them (web_search only).
    citable_urls: dict[str, str] = field(default_factory=dict)
    # What the call found, for the inspector's trace (engine/turn_trace.py): file_search's chunks
    # (vector_store_id, file_id, filename, chunk_index, score, text).
    sources: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CallPlan:
    """How one call's output item appears before the call runs."""

    id_prefix: str
    # The item's fields while the call runs (type, status in_progress, ...; no id).
    fields: dict[str, Any]
    # Progress events announced before the call runs, e.g. ("in_progress", "searching").
    phases: tuple[str, ...] = ()
    # The item is final as announced and the call does not run now: the turn ends after this
    # model call so that the client can answer it (an `mcp_approval_request`).
    awaits_client: bool = False


@dataclass(frozen=True)
class ToolListing:
    """An output item a tool announces before the first model call (e.g. `mcp_list_tools`):
    added, `response.<type>.in_progress`, then `.completed` or `.failed`, then done."""

    id_prefix: str
    pending: dict[str, Any]
    final: dict[str, Any]
    failed: bool = False


@dataclass(frozen=True)
class ResumedCall:
    """A call of an earlier turn that waited for the client (an approval request).

    Approved calls run before the first model call, like any call the model makes now; declined
    ones go back to the model as a tool message saying so; unanswered ones (the client moved on)
    leave the history. `call` carries the call id the model saw."""

    call: ToolCall
    decision: Literal["approved", "declined", "unanswered"]
    declined_message: str = ""


@dataclass(frozen=True)
class ToolContext:
    """What a tool may look at while it is built for one turn."""

    # The request's `include` values.
    includes: frozenset[str] = frozenset()
    # Items of the turns before this one (previous_response_id chain or conversation), oldest first.
    prior_items: tuple[dict[str, Any], ...] = ()
    # This turn's input items, as given.
    input_items: tuple[dict[str, Any], ...] = ()
    # The chat messages the model has seen so far, this turn's input included.
    history: tuple[dict[str, Any], ...] = ()
    # The tools of the previous response (previous_response_id), as it echoed them.
    prior_tools: tuple[dict[str, Any], ...] = ()


class ServerTool(Protocol):
    def function_names(self) -> tuple[str, ...]:
        """The function names the model calls; each call to one of them is routed to this tool."""
        ...

    def chat_definitions(self) -> list[dict[str, Any]]: ...

    def echoed_config(self) -> dict[str, Any]:
        """The tool as the response object echoes it, every field concrete."""
        ...

    def listings(self) -> list[ToolListing]:
        """Items announced before the first model call; empty for tools that list nothing."""
        ...

    def argument_stream(self, name: str) -> ArgumentStream | None:
        """How a call to `name` opens while the model streams it; None to open it after the call."""
        ...

    def plan(self, call: ToolCall) -> CallPlan:
        """The call's item before it runs (status in_progress; no id)."""
        ...

    def resumed_calls(self) -> list[ResumedCall]:
        """Calls of earlier turns answered by this turn's input (approval responses)."""
        ...

    async def run(self, call: ToolCall) -> ToolRun:
        """Execute the call. Failures are returned as a failed ToolRun, not raised."""
        ...

    async def aclose(self) -> None:
        """Release connections; called exactly once when the turn ends, on every path."""
        ...


# Builds a server tool from the request's tool config, its index in `tools` (which names the param
# in errors) and the turn's context. Async, because a tool may connect and list before the turn.
ToolFactory = Callable[[dict[str, Any], int, ToolContext], Awaitable[ServerTool]]


class SimpleServerTool:
    """Defaults for a tool with one function, no listing, no streamed arguments and nothing to
    resume or close (file_search, web_search)."""

    function_name: str

    def function_names(self) -> tuple[str, ...]:
        return (self.function_name,)

    def listings(self) -> list[ToolListing]:
        return []

    def argument_stream(self, name: str) -> ArgumentStream | None:
        return None

    def resumed_calls(self) -> list[ResumedCall]:
        return []

    async def aclose(self) -> None:
        return None
