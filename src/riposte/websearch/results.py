"""What a web search returns, and the tool message the model reads.

The tool message is the JSON the reference recordings carry: `{"query": ..., "top_k": [{"url",
"title", "content", "score", "raw_content"}, ...]}`, serialized exactly as the recording system did
(`json.dumps` defaults), so that a recorded Tavily answer and a live one read the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from riposte.errors import RiposteError

ContextSize = Literal["low", "medium", "high"]
# What the model reads when a search cannot run at all (no provider, or no offline corpus for a
# tool without external web access): enough to answer without it.
NOT_CONFIGURED = (
    "Web search is not available: no search provider is configured on this server. Answer without "
    "searching, and say that you could not search the web."
)
# How many results each search_context_size asks for; "medium" is Tavily's own default of 5.
RESULTS_PER_CONTEXT: dict[str, int] = {"low": 3, "medium": 5, "high": 10}


class WebSearchError(RiposteError):
    """A provider failed (unreachable, refused the key, answered nonsense). The call fails, the turn
    goes on."""

    status_code = 502
    default_code = "web_search_failed"


@dataclass(frozen=True)
class SearchQuery:
    query: str
    context_size: ContextSize = "medium"
    allowed_domains: tuple[str, ...] = ()
    country: str | None = None  # ISO 3166-1 alpha-2, from user_location

    @property
    def max_results(self) -> int:
        return RESULTS_PER_CONTEXT[self.context_size]

    def recorded_kwargs(self) -> dict[str, Any]:
        """The call's arguments as a recording names them: the query, plus only what differs from
        the defaults, so that a plain search matches the reference recordings."""
        kwargs: dict[str, Any] = {"query": self.query}
        if self.context_size != "medium":
            kwargs["search_context_size"] = self.context_size
        if self.allowed_domains:
            kwargs["allowed_domains"] = list(self.allowed_domains)
        if self.country:
            kwargs["country"] = self.country
        return kwargs


@dataclass(frozen=True)
class WebResult:
    url: str
    title: str
    content: str
    score: float | None = None
    raw_content: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "content": self.content, "score": self.score,
                "raw_content": self.raw_content}


class SearchProvider(Protocol):
    @property
    def name(self) -> str:
        """The provider name recordings carry, e.g. `tavily`."""
        ...

    @property
    def outbound(self) -> bool:
        """Whether a search leaves the machine (and so is recorded and replayed)."""
        ...

    async def search(self, query: SearchQuery) -> list[WebResult]: ...


def results_content(query: str, results: Sequence[WebResult]) -> str:
    return json.dumps({"query": query, "top_k": [result.as_json() for result in results]})


def parse_results_content(content: str) -> list[WebResult]:
    """The results inside a tool message (live or recorded); anything unreadable is skipped."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return []
    entries = parsed.get("top_k") if isinstance(parsed, dict) else None
    results: list[WebResult] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            score = entry.get("score")
            results.append(WebResult(url=entry["url"], title=str(entry.get("title") or entry["url"]),
                                     content=str(entry.get("content") or ""),
                                     score=float(score) if isinstance(score, int | float) else None))
    return results


def within_domains(url: str, domains: Sequence[str]) -> bool:
    """True when the URL's host is one of `domains` or a subdomain of one (as OpenAI's filter)."""
    if not domains:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def normalize_domain(domain: str) -> str:
    """`https://www.Example.com/path` and `example.com` alike become a bare lower-case host."""
    text = domain.strip().lower()
    host = urlsplit(text if "//" in text else "//" + text).hostname or ""
    return host.removeprefix("www.").rstrip(".")
