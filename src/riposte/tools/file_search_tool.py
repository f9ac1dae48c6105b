"""file_search as a server-side tool of the turn loop (tools/base.py), over the vector stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riposte.engine.item_includes import FILE_SEARCH_RESULTS
from riposte.engine.stream_state import ToolCall
from riposte.errors import NotFoundError
from riposte.tools.base import CallPlan, ServerTool, SimpleServerTool, ToolContext, ToolFactory, ToolRun
from riposte.tools.file_search import (
    FUNCTION_DEFINITION,
    TOOL_NAME,
    FileSearchConfig,
    FileSearchOutcome,
    StoreSearcher,
    file_search_call_item,
    parse_tool,
    query_from_arguments,
    run_file_search,
    traced_sources,
)


@dataclass(frozen=True)
class FileSearchTool(SimpleServerTool):
    config: FileSearchConfig
    searcher: StoreSearcher
    include_results: bool

    function_name: str = TOOL_NAME
    item_type: str = "file_search_call"

    def chat_definitions(self) -> list[dict[str, Any]]:
        return [FUNCTION_DEFINITION]

    def echoed_config(self) -> dict[str, Any]:
        return self.config.echoed()

    def plan(self, call: ToolCall) -> CallPlan:
        fields = {"type": self.item_type, "status": "in_progress", "queries": _queries(call), "results": None}
        return CallPlan(id_prefix="fs", fields=fields, phases=("in_progress", "searching"))

    async def run(self, call: ToolCall) -> ToolRun:
        try:
            query = query_from_arguments(call.arguments)
        except ValueError as exc:
            # The model sees what went wrong and can call again with proper arguments.
            return ToolRun(item={"type": self.item_type, "status": "failed", "queries": [], "results": None},
                           tool_message_content=f"knowledge_search failed: {exc}", failed=True, final_phase=None)
        outcome = await run_file_search(self.searcher, self.config, query)
        return ToolRun(item=_item_fields(outcome, self.include_results),
                       tool_message_content=outcome.tool_message_content(),
                       failed=outcome.status == "failed",
                       final_phase="completed" if outcome.status != "failed" else None,
                       citable_files=outcome.cited_files(), sources=traced_sources(outcome))


def _item_fields(outcome: FileSearchOutcome, include_results: bool) -> dict[str, Any]:
    item = file_search_call_item("", outcome, include_results)
    del item["id"]  # the stream state machine owns item ids
    return item


def _queries(call: ToolCall) -> list[str]:
    try:
        return [query_from_arguments(call.arguments)]
    except ValueError:
        return []


def file_search_factory(searcher: StoreSearcher) -> ToolFactory:
    """The `file_search` entry of Services.tool_factories."""

    async def build(tool: dict[str, Any], index: int, context: ToolContext) -> ServerTool:
        config = parse_tool(tool, f"tools[{index}]")
        await _require_stores(searcher, tool["vector_store_ids"], f"tools[{index}].vector_store_ids")
        return FileSearchTool(config, searcher, FILE_SEARCH_RESULTS in context.includes)

    return build


async def _require_stores(searcher: StoreSearcher, store_ids: list[str], param: str) -> None:
    """Every store must be the caller's, checked before the model is called: an unknown id is a 404
    naming it, and another project's store answers exactly as one that never existed."""
    for position, store_id in enumerate(store_ids):
        try:
            await searcher.require_store(store_id)
        except NotFoundError as exc:
            raise NotFoundError(f"No vector store with id '{store_id}' found.",
                                param=f"{param}[{position}]") from exc
