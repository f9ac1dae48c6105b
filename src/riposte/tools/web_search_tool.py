"""web_search as a server-side tool of the turn loop (tools/base.py), over the search providers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from riposte.engine.item_includes import WEB_SEARCH_SOURCES
from riposte.engine.stream_state import ToolCall
from riposte.errors import RiposteError
from riposte.tools.base import CallPlan, ServerTool, SimpleServerTool, ToolContext, ToolFactory, ToolRun
from riposte.tools.file_search import query_from_arguments
from riposte.tools.web_search import (
    FUNCTION_DEFINITION,
    TOOL_NAME,
    WebSearchConfig,
    parse_web_search_tool,
    web_search_call_item,
)
from riposte.websearch.service import WebSearchService

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebSearchTool(SimpleServerTool):
    config: WebSearchConfig
    service: WebSearchService
    include_sources: bool

    function_name: str = TOOL_NAME

    def chat_definitions(self) -> list[dict[str, Any]]:
        return [FUNCTION_DEFINITION]

    def echoed_config(self) -> dict[str, Any]:
        return self.config.echoed()

    def plan(self, call: ToolCall) -> CallPlan:
        return CallPlan(id_prefix="ws", fields=web_search_call_item("in_progress", _query(call), None),
                        phases=("in_progress", "searching"))

    async def run(self, call: ToolCall) -> ToolRun:
        try:
            query = query_from_arguments(call.arguments)
        except ValueError as exc:
            return _failed(None, f"web_search failed: {exc}")
        try:
            outcome = await self.service.search(self.config.query(query), self.config.external_web_access)
        except RiposteError as exc:
            return _failed(query, exc.message)
        except Exception as exc:  # a broken provider must not take the turn down with it
            logger.warning("web search for %r failed", query, exc_info=True)
            return _failed(query, f"web search failed: {type(exc).__name__}")
        sources = outcome.results if self.include_sources else None
        return ToolRun(item=web_search_call_item("completed", query, sources), tool_message_content=outcome.content,
                       citable_urls={result.url: result.title for result in outcome.results})


def _failed(query: str | None, message: str) -> ToolRun:
    # The model reads why, so it can answer without the search or try again.
    return ToolRun(item=web_search_call_item("failed", query, None), tool_message_content=message, failed=True,
                   final_phase=None)


def _query(call: ToolCall) -> str | None:
    try:
        return query_from_arguments(call.arguments)
    except ValueError:
        return None


def web_search_factory(service: WebSearchService) -> ToolFactory:
    """The entry of Services.tool_factories for every web_search tool type."""

    async def build(tool: dict[str, Any], index: int, context: ToolContext) -> ServerTool:
        return WebSearchTool(parse_web_search_tool(tool, f"tools[{index}]"), service,
                             WEB_SEARCH_SOURCES in context.includes)

    return build
