"""A turn's items taken together: each id once, each client tool call answered."""

from __future__ import annotations

import pytest

from riposte.engine.input_consistency import check_calls_answered, check_item_ids_unique
from riposte.errors import InvalidRequestError

USER = {"id": "msg_u", "type": "message", "role": "user", "content": "Weather?"}
CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}",
        "status": "completed"}
OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "Sunny."}
FOLLOW_UP = {"role": "user", "content": "And tomorrow?"}


def test_an_item_already_in_context_sent_again_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_item_ids_unique([USER, CALL], [OUTPUT, USER])
    assert raised.value.param == "input[1]" and "msg_u" in raised.value.message


def test_an_item_twice_in_one_input_is_a_400_and_items_without_ids_are_not_compared() -> None:
    check_item_ids_unique([], [FOLLOW_UP, FOLLOW_UP, USER])
    with pytest.raises(InvalidRequestError) as raised:
        check_item_ids_unique([], [USER, FOLLOW_UP, USER])
    assert raised.value.param == "input[2]"


@pytest.mark.parametrize(("prior", "new"), [
    ([USER, CALL], [OUTPUT]),  # answered in the next request (previous_response_id)
    ([], [USER, CALL, OUTPUT, FOLLOW_UP]),  # the whole history sent again
    ([USER, CALL, OUTPUT], [FOLLOW_UP]),  # answered earlier in the chain
    ([USER, {**CALL, "status": "incomplete"}], [FOLLOW_UP]),  # cut by the output limit: nothing to answer
])
def test_answered_calls_pass(prior: list[dict[str, object]], new: list[dict[str, object]]) -> None:
    check_calls_answered(prior, new)


@pytest.mark.parametrize(("prior", "new"), [
    ([USER, CALL], [FOLLOW_UP]),
    ([], [USER, CALL, FOLLOW_UP]),
    ([], [USER, {"type": "custom_tool_call", "call_id": "call_9", "name": "patch", "input": "x"}]),
])
def test_a_call_left_unanswered_is_a_400_about_the_input(
    prior: list[dict[str, object]], new: list[dict[str, object]]
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_calls_answered(prior, new)
    assert raised.value.param == "input" and raised.value.code == "missing_tool_output"
