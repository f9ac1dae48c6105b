"""The web_search tool's request shape, its echo, what the model sees, and its output item.

- Tool types: `web_search`, `web_search_2025_08_26`, `web_search_preview`,
  `web_search_preview_2025_03_11`; all run the same search.
- What the model sees: the function `web_search` exactly as the reference recordings carry it
  (only an identical definition replays).
- The echo carries concrete values: `search_context_size` and `user_location` are never null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from riposte.vectors.params import invalid, only_keys
from riposte.websearch.results import RESULTS_PER_CONTEXT, ContextSize, SearchQuery, WebResult, normalize_domain

TOOL_NAME = "web_search"
WEB_SEARCH_TYPES = ("web_search", "web_search_2025_08_26")
PREVIEW_TYPES = ("web_search_preview", "web_search_preview_2025_03_11")
FUNCTION_DEFINITION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Search the web for information",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "The query to search for"}},
            "required": ["query"],
        },
    },
}
_FIELDS = {
    # `indexed_web_access` is Codex's: searching an index is what the offline provider does anyway.
    "web_search": ("type", "filters", "user_location", "search_context_size", "external_web_access",
                   "indexed_web_access", "search_content_types", "image_settings"),
    "preview": ("type", "user_location", "search_context_size", "search_content_types"),
}
_LOCATION_FIELDS = ("type", "city", "country", "region", "timezone")
# OpenAI's documented default when no location is given; providers default to US results too.
_DEFAULT_LOCATION: dict[str, Any] = {"type": "approximate", "city": None, "country": "US", "region": None,
                                     "timezone": None}
_MAX_DOMAINS = 100


@dataclass(frozen=True)
class WebSearchConfig:
    type: str = "web_search"
    context_size: ContextSize = "medium"
    allowed_domains: tuple[str, ...] | None = None
    user_location: dict[str, Any] | None = None
    external_web_access: bool = True
    search_content_types: tuple[str, ...] | None = None

    @property
    def is_preview(self) -> bool:
        return self.type in PREVIEW_TYPES

    def query(self, text: str) -> SearchQuery:
        country = (self.user_location or {}).get("country")
        return SearchQuery(query=text, context_size=self.context_size, allowed_domains=self.allowed_domains or (),
                           country=country)

    def echoed(self) -> dict[str, Any]:
        echoed: dict[str, Any] = {"type": self.type}
        if not self.is_preview:
            echoed["filters"] = {"allowed_domains": list(self.allowed_domains)} if self.allowed_domains else None
        echoed["search_context_size"] = self.context_size
        echoed["user_location"] = dict(self.user_location or _DEFAULT_LOCATION)
        if not self.is_preview:
            echoed["external_web_access"] = self.external_web_access
        if self.search_content_types is not None:
            echoed["search_content_types"] = list(self.search_content_types)
        return echoed


def parse_web_search_tool(tool: dict[str, Any], param: str) -> WebSearchConfig:
    """A web_search tool from a request; a 400 naming the parameter if it is malformed."""
    kind = str(tool.get("type"))
    preview = kind in PREVIEW_TYPES
    only_keys(tool, _FIELDS["preview" if preview else "web_search"], param)
    size = tool.get("search_context_size") or "medium"
    if size not in RESULTS_PER_CONTEXT:
        raise invalid(f"{param}.search_context_size", "must be one of low, medium, high")
    access = tool.get("external_web_access")
    for name in ("external_web_access", "indexed_web_access"):
        if tool.get(name) is not None and not isinstance(tool[name], bool):
            raise invalid(f"{param}.{name}", "must be a boolean")
    if tool.get("image_settings") is not None and not isinstance(tool["image_settings"], dict):
        raise invalid(f"{param}.image_settings", "must be an object")
    return WebSearchConfig(
        type=kind, context_size=cast(ContextSize, size),
        allowed_domains=_allowed_domains(tool.get("filters"), f"{param}.filters"),
        user_location=_user_location(tool.get("user_location"), f"{param}.user_location", preview),
        external_web_access=access is not False,
        search_content_types=_content_types(tool.get("search_content_types"), f"{param}.search_content_types"),
    )


def _allowed_domains(raw: Any, param: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object")
    only_keys(raw, ("allowed_domains",), param)
    domains = raw.get("allowed_domains")
    if domains is None:
        return None
    if not isinstance(domains, list) or not all(isinstance(d, str) and d.strip() for d in domains):
        raise invalid(f"{param}.allowed_domains", "must be a list of domain names")
    if len(domains) > _MAX_DOMAINS:
        raise invalid(f"{param}.allowed_domains", f"must hold at most {_MAX_DOMAINS} domains")
    normalized = tuple(dict.fromkeys(normalize_domain(d) for d in domains))
    if not all(normalized):
        raise invalid(f"{param}.allowed_domains", "must be a list of domain names")
    return normalized


def _user_location(raw: Any, param: str, preview: bool) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object")
    only_keys(raw, _LOCATION_FIELDS, param)
    if raw.get("type", None if not preview else "missing") not in (None, "approximate"):
        raise invalid(f"{param}.type", "must be 'approximate'")
    for name in _LOCATION_FIELDS[1:]:
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise invalid(f"{param}.{name}", "must be a string")
    country = raw.get("country")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise invalid(f"{param}.country", "must be a two-letter ISO country code")
    location = {"type": "approximate", **{name: raw.get(name) for name in _LOCATION_FIELDS[1:]}}
    if country is not None:
        location["country"] = country.upper()
    return location


def _content_types(raw: Any, param: str) -> tuple[str, ...] | None:
    # The kinds of results a search *may* return. The providers here return text only, which every
    # allowed set admits (Codex asks for ["text", "image"]); a set without "text" cannot be served.
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(value in ("text", "image") for value in raw):
        raise invalid(param, "must be a non-empty list of 'text' and 'image'")
    if "text" not in raw:
        raise invalid(param, "image-only search is not supported by this server; include 'text'")
    return tuple(raw)


def web_search_call_item(status: str, query: str | None, sources: list[WebResult] | None) -> dict[str, Any]:
    """The `web_search_call` item's fields (no id: the stream state machine owns ids). `sources`
    only when the request's include asked for `web_search_call.action.sources`."""
    action: dict[str, Any] = {"type": "search"}
    if query is not None:
        action["query"] = query
    if sources is not None:
        action["sources"] = [{"type": "url", "url": source.url} for source in sources]
    return {"type": "web_search_call", "status": status, "action": action}
