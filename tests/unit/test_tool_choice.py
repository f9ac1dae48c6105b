"""tool_choice resolution: Responses tool references to chat functions, forced on the first call only."""

from __future__ import annotations

import pytest

from riposte.engine.tool_choice import DeclaredTool, echoed_tool_choice, resolve_tool_choice
from riposte.errors import InvalidRequestError

TOOLS = [
    DeclaredTool("function", ("lookup",)),
    DeclaredTool("file_search", ("knowledge_search",)),
    DeclaredTool("web_search_preview", ("web_search",)),
    DeclaredTool("mcp", ("greet_everyone", "get_boiling_point"), "localmcp"),
]
DEFINITIONS = [{"type": "function", "function": {"name": n}} for t in TOOLS for n in t.function_names]


def forced(name: str) -> dict[str, object]:
    return {"type": "function", "function": {"name": name}}


@pytest.mark.parametrize(("choice", "name"), [
    ({"type": "file_search"}, "knowledge_search"),
    ({"type": "web_search"}, "web_search"),
    ({"type": "web_search_preview"}, "web_search"),
    ({"type": "web_search_preview_2025_03_11"}, "web_search"),
    ({"type": "mcp", "server_label": "localmcp", "name": "get_boiling_point"}, "get_boiling_point"),
    ({"type": "function", "name": "lookup"}, "lookup"),
])
def test_a_named_tool_is_forced_on_the_first_call_only(choice: dict[str, object], name: str) -> None:
    resolved = resolve_tool_choice(choice, TOOLS)
    assert resolved.for_call(first=True) == forced(name)
    assert resolved.for_call(first=False) is None
    assert resolved.offered(DEFINITIONS) == DEFINITIONS


def test_required_is_not_repeated_after_the_first_call() -> None:
    resolved = resolve_tool_choice("required", TOOLS)
    assert (resolved.for_call(True), resolved.for_call(False)) == ("required", None)
    assert resolve_tool_choice("auto", TOOLS).for_call(False) == "auto"


def test_allowed_tools_restricts_what_the_model_sees() -> None:
    resolved = resolve_tool_choice({"type": "allowed_tools", "mode": "required", "tools": [
        {"type": "mcp", "server_label": "localmcp"}, {"type": "function", "name": "lookup"}]}, TOOLS)
    assert [d["function"]["name"] for d in resolved.offered(DEFINITIONS)] == [
        "lookup", "greet_everyone", "get_boiling_point"]
    assert (resolved.for_call(True), resolved.for_call(False)) == ("required", None)


def test_an_mcp_server_without_a_tool_name_requires_one_of_its_tools() -> None:
    resolved = resolve_tool_choice({"type": "mcp", "server_label": "localmcp"}, TOOLS)
    assert resolved.for_call(True) == "required"
    assert len(resolved.offered(DEFINITIONS)) == 2


@pytest.mark.parametrize(("choice", "param"), [
    ({"type": "mcp", "server_label": "other"}, "tool_choice.server_label"),
    ({"type": "mcp", "server_label": "localmcp", "name": "nope"}, "tool_choice.name"),
    ({"type": "computer_use_preview"}, "tool_choice.type"),
    ({"type": "function", "name": "nope"}, "tool_choice.name"),
    ({"type": "allowed_tools", "mode": "sometimes", "tools": []}, "tool_choice.mode"),
    ({"type": "allowed_tools", "tools": [{"type": "file_search"}, {"type": "image_generation"}]},
     "tool_choice.tools[1].type"),
    ("sometimes", "tool_choice"),
])
def test_a_choice_naming_nothing_declared_is_a_400_naming_the_parameter(choice: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        resolve_tool_choice(choice, TOOLS)  # type: ignore[arg-type]
    assert raised.value.param == param


def test_required_without_tools_is_a_400_while_auto_and_none_send_nothing() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        resolve_tool_choice("required", [])
    assert raised.value.param == "tool_choice"
    for mode in ("auto", "none"):
        assert resolve_tool_choice(mode, []).for_call(first=True) is None


def test_web_search_choices_echo_in_a_form_the_sdk_parses() -> None:
    from openai.types.responses import Response

    adapter = Response.model_fields["tool_choice"].annotation
    from pydantic import TypeAdapter

    for choice in ({"type": "web_search"}, {"type": "web_search_2025_08_26"}, {"type": "web_search_preview"},
                   {"type": "mcp", "server_label": "s", "name": "t"}, "required"):
        echoed = echoed_tool_choice(choice)
        TypeAdapter(adapter).validate_python(echoed)
    assert echoed_tool_choice({"type": "web_search"}) == {
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "web_search"}]}
