"""Hypothesis strategies for `POST /v1/responses` bodies, built from the request grammar.

Every field is drawn mostly from its grammar (a role from the roles, a part from the part types)
and sometimes from anything JSON can hold (`{}` for a role, a number for an id, NUL bytes, deep
lists, 2**70), so one run covers valid requests, near-misses and hostile ones. To fuzz a new item
or tool type, add its strategy to `ITEM_STRATEGIES` or `TOOL_STRATEGIES`.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text with the characters that broke storage before: NUL, other controls, non-BMP characters.
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "\x00", "a\x00b", "\n\t", "🦀", "x" * 300])
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def deep_list(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


# Deep enough to pass the 64-level parse limit or to be refused by it.
DEEP = st.integers(min_value=50, max_value=400).map(deep_list)
HOSTILE = ANY_JSON | DEEP


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a valid value; about one time in ten anything at all, so that about half the bodies
    are valid and reach translation, the upstream and storage."""
    return _one_in_ten(HOSTILE, valid)


def _one_in_ten(rare: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # one_of picks its branches evenly however often one is repeated, so weigh by a draw.
    return st.sampled_from(range(10)).flatmap(lambda n: rare if n == 0 else usual)


def obj(required: dict[str, st.SearchStrategy[Any]],
        optional: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """An object of the grammar: its fields hostile at times, a required one missing at times,
    and an unknown extra field at times (the SDKs send fields newer than the server)."""
    fields = {key: field(value) for key, value in required.items()}
    extras = {key: field(value) for key, value in (optional or {}).items()}
    extras["x_extra"] = SCALARS
    return st.fixed_dictionaries(fields, optional=extras).flatmap(_maybe_drop_one)


def _maybe_drop_one(value: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    dropped = st.sampled_from(sorted(value)).map(lambda key: {k: v for k, v in value.items() if k != key})
    return _one_in_ten(dropped, st.just(value)) if value else st.just(value)


ITEM_IDS = st.sampled_from(["msg_1", "fc_1", "x" * 101, "id\x00"]) | IDENT
PART = obj({"type": st.sampled_from(["input_text", "output_text", "refusal", "input_image", "input_file",
                                     "input_audio"])},
           {"text": TEXT, "refusal": TEXT, "image_url": st.just("data:image/png;base64,AA=="),
            "file_data": st.just("data:text/plain;base64,aGk="), "filename": TEXT,
            "detail": st.sampled_from(["low", "high", "auto"]), "annotations": st.just([])})
CONTENT = TEXT | st.lists(PART, max_size=3)
COMMON = {"id": ITEM_IDS, "status": st.sampled_from(["completed", "in_progress", "incomplete"])}
CALL_IDS = st.sampled_from(["call_1", "call_2"])

ITEM_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "easy_message": obj({"role": st.sampled_from(["user", "system", "developer", "assistant", "tool"]),
                         "content": CONTENT}, COMMON),
    "message": obj({"type": st.just("message"), "role": st.sampled_from(["user", "assistant", "developer"]),
                    "content": CONTENT}, COMMON),
    "function_call": obj({"type": st.just("function_call"), "call_id": CALL_IDS, "name": IDENT,
                          "arguments": st.just('{"a": 1}') | TEXT}, COMMON),
    "function_call_output": obj({"type": st.just("function_call_output"), "call_id": CALL_IDS,
                                 "output": TEXT | st.lists(PART, max_size=2)}, COMMON),
    "reasoning": obj({"type": st.just("reasoning"),
                      "summary": st.lists(obj({"type": st.just("summary_text"), "text": TEXT}), max_size=2)},
                     {"content": st.lists(obj({"type": st.just("reasoning_text"), "text": TEXT}), max_size=2),
                      "encrypted_content": TEXT, **COMMON}),
    "file_search_call": obj({"type": st.just("file_search_call"), "queries": st.lists(TEXT, max_size=2)}, COMMON),
    "mcp_call": obj({"type": st.just("mcp_call"), "name": IDENT, "arguments": TEXT, "server_label": IDENT}),
    "unknown": obj({"type": TEXT}),
}
ITEM = st.one_of(*ITEM_STRATEGIES.values()) | HOSTILE

SCHEMA = st.fixed_dictionaries({"type": st.just("object"),
                                "properties": st.dictionaries(IDENT, st.just({"type": "string"}), max_size=2)})
TOOL_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "function": obj({"type": st.just("function"), "name": IDENT},
                    {"description": TEXT, "parameters": SCHEMA, "strict": st.booleans()}),
    "file_search": obj({"type": st.just("file_search"), "vector_store_ids": st.lists(IDENT, max_size=2)},
                       {"max_num_results": st.integers(0, 60)}),
    "other": obj({"type": st.sampled_from(["web_search", "mcp", "custom", "shell", "computer_use_preview"]) | TEXT}),
}
TOOL = st.one_of(*TOOL_STRATEGIES.values()) | HOSTILE
TOOL_CHOICE = st.sampled_from(["auto", "none", "required"]) | obj({"type": st.just("function"), "name": IDENT})


def create_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Create-response bodies for the scripted upstream's provider `fake`."""
    return st.fixed_dictionaries(
        {"model": field(st.just("fake/m")), "input": field(TEXT | st.lists(ITEM, min_size=1, max_size=4))},
        optional={"tools": field(st.lists(TOOL, max_size=3)), "tool_choice": field(TOOL_CHOICE),
                  "instructions": field(TEXT), "metadata": field(st.dictionaries(IDENT, TEXT, max_size=2)),
                  "max_output_tokens": field(st.integers(1, 2**40)), "temperature": field(st.floats(0, 2)),
                  "user": field(TEXT), "parallel_tool_calls": field(st.booleans()),
                  "text": field(st.fixed_dictionaries({"format": st.just({"type": "text"})})),
                  "reasoning": field(st.fixed_dictionaries({"effort": st.sampled_from(["low", "high"])})),
                  "stream": st.booleans()},
    )


def conversation_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Create-conversation bodies: items of every kind, as they come back from a client."""
    return st.fixed_dictionaries({"items": field(st.lists(ITEM, max_size=4))},
                                 optional={"metadata": field(st.dictionaries(IDENT, TEXT, max_size=2))})
