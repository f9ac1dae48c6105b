"""Brave Search (`GET /web/search`) as a web search provider."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from riposte.websearch.http_search import SearchApi
from riposte.websearch.results import SearchQuery, WebResult, WebSearchError

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class BraveSearch:
    api: SearchApi

    name: str = "brave"
    outbound: bool = True

    async def search(self, query: SearchQuery) -> list[WebResult]:
        key = self.api.key("BRAVE_API_KEY")
        params: dict[str, Any] = {"q": _with_sites(query), "count": query.max_results}
        if query.country:
            params["country"] = query.country.lower()
        data = await self.api.fetch_json("GET", "/web/search", params=params,
                                         headers={"X-Subscription-Token": key, "Accept": "application/json"})
        return [_result(entry) for entry in _entries(data)]


def _with_sites(query: SearchQuery) -> str:
    # Brave has no domain parameter; its query language does.
    if not query.allowed_domains:
        return query.query
    return f"{query.query} ({' OR '.join(f'site:{domain}' for domain in query.allowed_domains)})"


def _entries(data: Any) -> list[dict[str, Any]]:
    web = data.get("web") if isinstance(data, dict) else None
    results = web.get("results") if isinstance(web, dict) else []
    if not isinstance(results, list):
        raise WebSearchError("Brave answered without a web.results list")
    return [entry for entry in results if isinstance(entry, dict) and isinstance(entry.get("url"), str)]


def _result(entry: dict[str, Any]) -> WebResult:
    snippets = [entry.get("description") or "", *(entry.get("extra_snippets") or [])]
    content = " ".join(html.unescape(_TAG.sub("", str(s))) for s in snippets if s)
    return WebResult(url=entry["url"], title=html.unescape(_TAG.sub("", str(entry.get("title") or entry["url"]))),
                     content=content)
