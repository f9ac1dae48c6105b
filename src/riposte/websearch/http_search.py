"""What the HTTP search providers share: one client, the outbound policy, and error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from riposte.websearch.results import WebSearchError

# Raises when a URL may not be fetched (the outbound policy); returns otherwise.
UrlCheck = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class SearchApi:
    """Where an HTTP search provider is, its key, and the client and policy that reach it."""

    provider: str  # as people name it, for messages: "Tavily"
    client: httpx.AsyncClient
    base_url: str
    api_key: str | None
    check_url: UrlCheck

    def key(self, env_name: str) -> str:
        if not self.api_key:
            raise WebSearchError(f"{self.provider} has no API key: set {env_name} or "
                                 f"web_search.{self.provider.lower()}.api_key")
        return self.api_key

    async def fetch_json(self, method: str, path: str, **request: Any) -> Any:
        """One provider request; every failure becomes a WebSearchError naming the provider."""
        url = f"{self.base_url.rstrip('/')}{path}"
        await self.check_url(url)
        try:
            response = await self.client.request(method, url, **request)
        except httpx.HTTPError as exc:
            raise WebSearchError(f"{self.provider} search failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise WebSearchError(f"{self.provider} refused the API key (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise WebSearchError(
                f"{self.provider} search failed with HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise WebSearchError(f"{self.provider} answered with something other than JSON") from exc
