"""Input items and tool definitions are validated by typed models: every bad field is a 400 that
names its JSON path, extra fields the SDKs send are accepted, and nothing malformed gets through."""

from __future__ import annotations

from typing import Any

import pytest

from riposte.engine.item_models import ITEM_MODELS, validate_item
from riposte.engine.tool_models import validate_tools
from riposte.errors import InvalidRequestError
from riposte.json_depth import check_depth


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"role": {}, "content": "x"}, "input[0].role"),
        ({"role": ["user"], "content": "x"}, "input[0].role"),
        ({"type": {}, "role": "user", "content": "x"}, "input[0].type"),
        ({"role": "user", "content": 5}, "input[0].content"),
        ({"role": "user"}, "input[0].content"),
        ({"role": "user", "content": [{"type": "input_audio"}]}, "input[0].content[0].type"),
        ({"role": "user", "content": [{"type": {}}]}, "input[0].content[0].type"),
        ({"role": "user", "content": [{"type": "output_text", "text": "x"}]}, "input[0].content[0].type"),
        ({"role": "user", "content": [{"type": "input_text", "text": 3}]}, "input[0].content[0].text"),
        ({"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}, "input[0].content[0].type"),
        ({"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}, "input[0].content[0].image_url"),
        ({"role": "user", "content": [{"type": "input_image", "image_url": "u", "detail": 1}]},
         "input[0].content[0].detail"),
        ({"role": "user", "content": "x", "id": 5}, "input[0].id"),
        ({"role": "user", "content": "x", "id": "m" * 101}, "input[0].id"),
        ({"role": "user", "content": "x", "id": "msg\x00"}, "input[0].id"),
        ({"type": "function_call", "call_id": "c", "name": "f"}, "input[0].arguments"),
        ({"type": "function_call", "call_id": 7, "name": "f", "arguments": "{}"}, "input[0].call_id"),
        ({"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}, "input[0].arguments"),
        ({"type": "function_call_output", "call_id": "c"}, "input[0].output"),
        ({"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text"}]},
         "input[0].output[0].text"),
        ({"type": "function_call_output", "call_id": "c", "output": [{"type": "refusal", "refusal": "no"}]},
         "input[0].output[0].type"),
        ({"type": "reasoning", "summary": [{"type": "summary_text", "text": 4}]}, "input[0].summary[0].text"),
        ({"type": "reasoning", "summary": [], "content": ["x"]}, "input[0].content[0]"),
        ({"type": "file_search_call", "queries": ["q"]}, "input[0].type"),
    ],
)
def test_a_malformed_input_item_is_a_400_naming_its_json_path(item: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        validate_item(item, "input[0]", in_input=True)
    assert raised.value.param == param
    assert raised.value.status_code == 400


def test_items_as_the_sdks_send_them_are_accepted_with_their_extra_fields() -> None:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": "no type"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "t"}], "status": None},
        {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "hi", "annotations": [], "logprobs": []},
                     {"type": "refusal", "refusal": "no"}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "id": "fc_1",
         "status": "completed", "namespace": None},
        {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "42"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
         "encrypted_content": None},
    ]
    for index, item in enumerate(items):
        validate_item(item, f"input[{index}]", in_input=True)


def test_every_item_model_says_its_type_and_id_prefix() -> None:
    for kind, model in ITEM_MODELS.items():
        assert model.model_fields["type"].annotation is not str, kind
        assert model.id_prefix and model.id_prefix != "item", kind


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"name": "f"}, "tools[0].type"),
        ({"type": 3, "name": "f"}, "tools[0].type"),
        ({"type": "function"}, "tools[0].name"),
        ({"type": "function", "name": ""}, "tools[0].name"),
        ({"type": "function", "name": "search.web"}, "tools[0].name"),
        ({"type": "function", "name": "f" * 129}, "tools[0].name"),
        ({"type": "function", "name": {}}, "tools[0].name"),
        ({"type": "function", "name": "f", "parameters": []}, "tools[0].parameters"),
        ({"type": "function", "name": "f", "strict": "yes"}, "tools[0].strict"),
        ({"type": "function", "name": "f", "description": 1}, "tools[0].description"),
    ],
)
def test_a_malformed_function_tool_is_a_400_naming_its_json_path(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        validate_tools([tool])
    assert raised.value.param == param


def test_tool_names_take_what_openai_takes() -> None:
    validate_tools([{"type": "function", "name": "Get-weather_2"}, {"type": "custom", "name": "p" * 128},
                    {"type": "namespace", "name": "n" * 64, "description": "", "tools": [
                        {"type": "function", "name": "spawn"}]}])


def test_tool_types_without_a_model_are_left_to_their_builders() -> None:
    validate_tools([{"type": "mcp", "server_label": 1}, {"type": "web_search_preview"},
                    {"type": "function", "name": "f", "defer_loading": False}])


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_nesting_within_the_limit_passes_and_beyond_it_names_the_field() -> None:
    check_depth({"tools": [nested(62)]}, 64)  # the innermost object is level 64
    with pytest.raises(InvalidRequestError) as raised:
        check_depth({"tools": [nested(63)]}, 64)
    assert raised.value.param == "tools[0]" + ".a" * 62
    assert raised.value.code == "nesting_too_deep"


def test_a_thousand_levels_of_lists_are_refused_without_recursion() -> None:
    value: Any = []
    for _ in range(1000):
        value = [value]
    with pytest.raises(InvalidRequestError) as raised:
        check_depth({"input": value}, 64)
    assert raised.value.param is not None and raised.value.param.startswith("input[0][0]")
