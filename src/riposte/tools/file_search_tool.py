"""file_search as a ServerTool (tools/base.py), so the turn loop can run it like any built-in tool.

Register it with `Services.tool_factories["file_search"] = file_search_factory(svc.vector_stores)`.
"""

from __future__ import annotations

import copy
from typing import Any

from riposte.engine.stream_state import ToolCall
from riposte.engine.turn_tools import ToolFactory
from riposte.tools.base import ToolRun
from riposte.tools.file_search import (
    FUNCTION_DEFINITION,
    TOOL_NAME,
    FileSearchConfig,
    StoreSearcher,
    file_search_call_item,
    parse_tool,
    query_from_arguments,
    run_file_search,
)

ITEM_TYPE = "file_search_call"


class FileSearchTool:
    function_name = TOOL_NAME
    item_type = ITEM_TYPE
    id_prefix = "fs"
    progress_phases = ("in_progress", "searching")

    def __init__(self, searcher: StoreSearcher, config: FileSearchConfig) -> None:
        self._searcher = searcher
        self.config = config

    def chat_definition(self) -> dict[str, Any]:
        return copy.deepcopy(FUNCTION_DEFINITION)

    def echoed_config(self) -> dict[str, Any]:
        return self.config.echoed()

    def pending_item(self, call: ToolCall) -> dict[str, Any]:
        try:
            queries = [query_from_arguments(call.arguments)]
        except ValueError:
            queries = []
        return {"type": ITEM_TYPE, "status": "in_progress", "queries": queries, "results": None}

    async def run(self, call: ToolCall) -> ToolRun:
        try:
            query = query_from_arguments(call.arguments)
        except ValueError as exc:
            item: dict[str, Any] = {"type": ITEM_TYPE, "status": "failed", "queries": [], "results": None}
            return ToolRun(item=item, tool_message_content=f"Error: {exc}", failed=True, final_phase=None)
        outcome = await run_file_search(self._searcher, self.config, query)
        item = file_search_call_item("", outcome, include_results=True)
        del item["id"]
        return ToolRun(item=item, tool_message_content=outcome.tool_message_content(),
                       failed=outcome.status == "failed",
                       final_phase="completed" if outcome.status == "completed" else None,
                       citable_files=outcome.cited_files())


def file_search_factory(searcher: StoreSearcher) -> ToolFactory:
    def build(tool: dict[str, Any], index: int) -> FileSearchTool:
        return FileSearchTool(searcher, parse_tool(tool, f"tools[{index}]"))

    return build
