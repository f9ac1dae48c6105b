"""Which provider answers a search, and record/replay around the ones that go out.

- `external_web_access: false` always means the offline provider: nothing leaves the machine.
- Otherwise the configured provider (`web_search.provider`), or the first one that is set up:
  Tavily or Brave with an API key, else the offline corpus. With none, a search fails with a
  message that says how to configure one (the call fails; the request does not).
- Outbound providers run through `RecordedToolCalls`, so they record and replay like chat calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from riposte.config import InferenceMode, WebSearchSettings
from riposte.inference.recorded_tools import RecordedToolCalls
from riposte.inference.recording_store import RecordingStore
from riposte.websearch.brave import BraveSearch
from riposte.websearch.http_search import SearchApi, UrlCheck
from riposte.websearch.offline import OfflineSearch, StoreSearcher
from riposte.websearch.results import (
    NOT_CONFIGURED,
    SearchProvider,
    SearchQuery,
    WebResult,
    WebSearchError,
    parse_results_content,
    results_content,
    within_domains,
)
from riposte.websearch.tavily import TavilySearch

logger = logging.getLogger(__name__)

TOOL_NAME = "web_search"


@dataclass(frozen=True)
class SearchOutcome:
    provider: str
    # The tool message content, exactly as the model reads it.
    content: str
    results: list[WebResult]


class WebSearchService:
    def __init__(self, settings: WebSearchSettings, mode: InferenceMode, recordings: RecordingStore | None,
                 searcher: StoreSearcher | None, check_url: UrlCheck) -> None:
        self._client = httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False)
        self.offline = OfflineSearch(settings.offline.directory, settings.offline.vector_store_id, searcher)
        self._providers: dict[str, SearchProvider] = {
            "tavily": TavilySearch(SearchApi("Tavily", self._client, settings.tavily.base_url,
                                             settings.tavily.resolved_api_key(), check_url)),
            "brave": BraveSearch(SearchApi("Brave", self._client, settings.brave.base_url,
                                           settings.brave.resolved_api_key(), check_url)),
            "offline": self.offline,
        }
        self.default_provider = settings.provider or _first_set_up(settings)
        self._recorded = RecordedToolCalls(mode, recordings)
        if self.default_provider is None:
            logger.info("web search has no provider configured (web_search.provider, TAVILY_API_KEY, BRAVE_API_KEY "
                        "or web_search.offline); web_search calls will fail and the model is told so")

    def provider(self, external_web_access: bool) -> SearchProvider | None:
        if not external_web_access:
            return self.offline
        return self._providers[self.default_provider] if self.default_provider else None

    async def search(self, query: SearchQuery, external_web_access: bool) -> SearchOutcome:
        provider = self.provider(external_web_access)
        if provider is None:
            raise WebSearchError(NOT_CONFIGURED)

        async def live() -> str:
            results = [r for r in await provider.search(query) if within_domains(r.url, query.allowed_domains)]
            return results_content(query.query, results[: query.max_results])

        if provider.outbound:
            content = await self._recorded.invoke(provider.name, TOOL_NAME, query.recorded_kwargs(), live)
        else:
            content = await live()
        return SearchOutcome(provider.name, content, parse_results_content(content))

    async def aclose(self) -> None:
        await self._client.aclose()


def describe(settings: WebSearchSettings) -> str:
    """One line for the start-up summary."""
    provider = settings.provider or _first_set_up(settings)
    offline = settings.offline
    corpus = ", ".join(filter(None, [f"folder {offline.directory}" if offline.directory else None,
                                     f"vector store {offline.vector_store_id}" if offline.vector_store_id else None]))
    if provider is None:
        return "web search: no provider configured (web_search calls fail and the model is told why)"
    return f"web search: {provider}; offline corpus: {corpus or 'none'}"


def _first_set_up(settings: WebSearchSettings) -> str | None:
    if settings.tavily.resolved_api_key():
        return "tavily"
    if settings.brave.resolved_api_key():
        return "brave"
    if settings.offline.configured:
        return "offline"
    return None
