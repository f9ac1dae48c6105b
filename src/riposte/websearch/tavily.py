"""Tavily (`POST /search`) as a web search provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riposte.websearch.http_search import SearchApi
from riposte.websearch.results import SearchQuery, WebResult, WebSearchError


@dataclass(frozen=True)
class TavilySearch:
    api: SearchApi

    name: str = "tavily"
    outbound: bool = True

    async def search(self, query: SearchQuery) -> list[WebResult]:
        key = self.api.key("TAVILY_API_KEY")
        body: dict[str, Any] = {"query": query.query, "max_results": query.max_results,
                                "search_depth": "advanced" if query.context_size == "high" else "basic"}
        if query.allowed_domains:
            body["include_domains"] = list(query.allowed_domains)
        data = await self.api.fetch_json("POST", "/search", json=body, headers={"Authorization": f"Bearer {key}"})
        return [_result(entry) for entry in _entries(data)]


def _entries(data: Any) -> list[dict[str, Any]]:
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise WebSearchError("Tavily answered without a results list")
    return [entry for entry in results if isinstance(entry, dict) and isinstance(entry.get("url"), str)]


def _result(entry: dict[str, Any]) -> WebResult:
    score = entry.get("score")
    raw = entry.get("raw_content")
    return WebResult(url=entry["url"], title=str(entry.get("title") or entry["url"]),
                     content=str(entry.get("content") or ""),
                     score=float(score) if isinstance(score, int | float) else None,
                     raw_content=raw if isinstance(raw, str) else None)
