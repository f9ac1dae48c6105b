"""The `include` option of item listings: which optional fields a listed item shows.

Pure functions over stored items, which always keep every field; `include` only shapes the view,
as OpenAI's listings of input items and conversation items do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from riposte.errors import InvalidRequestError

Item = dict[str, Any]

FILE_SEARCH_RESULTS = "file_search_call.results"
WEB_SEARCH_RESULTS = "web_search_call.results"
WEB_SEARCH_SOURCES = "web_search_call.action.sources"
OUTPUT_TEXT_LOGPROBS = "message.output_text.logprobs"

# Every value OpenAI defines. Those not handled in `item_view` need no work here: image URLs are
# always shown (a session that replays listed items needs them), and Riposte has no encrypted
# reasoning, computer calls or code interpreter outputs to reveal.
INCLUDABLE = frozenset({
    FILE_SEARCH_RESULTS, WEB_SEARCH_RESULTS, WEB_SEARCH_SOURCES, OUTPUT_TEXT_LOGPROBS,
    "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
})


def parse_includes(values: Iterable[str], param: str = "include") -> frozenset[str]:
    """The requested includes; an unknown value is a 400 naming its position."""
    found = list(values)
    for index, value in enumerate(found):
        if value not in INCLUDABLE:
            raise InvalidRequestError(
                f"Invalid include value '{value}': expected one of {', '.join(sorted(INCLUDABLE))}.",
                param=f"{param}[{index}]", code="invalid_value",
            )
    return frozenset(found)


def item_view(item: Item, includes: frozenset[str]) -> Item:
    """The item as a listing shows it: optional fields only when asked for."""
    kind = item.get("type")
    if kind == "file_search_call" and FILE_SEARCH_RESULTS not in includes:
        return {**item, "results": None}
    if kind == "web_search_call":
        return _web_search_view(item, includes)
    if kind == "message" and item.get("role") == "assistant" and OUTPUT_TEXT_LOGPROBS not in includes:
        return {**item, "content": [_without_logprobs(part) for part in item.get("content") or []]}
    return item


def _web_search_view(item: Item, includes: frozenset[str]) -> Item:
    view = dict(item)
    if WEB_SEARCH_RESULTS not in includes:
        view.pop("results", None)
    action = view.get("action")
    if isinstance(action, dict) and "sources" in action and WEB_SEARCH_SOURCES not in includes:
        view["action"] = {k: v for k, v in action.items() if k != "sources"}
    return view


def _without_logprobs(part: Any) -> Any:
    if isinstance(part, dict) and part.get("type") == "output_text" and "logprobs" in part:
        return {k: v for k, v in part.items() if k != "logprobs"}
    return part
