"""The OpenAI Agents SDK (`openai-agents`, unmodified) end to end against a running Riposte, with
a scripted upstream: tool use over several steps, sessions kept in Riposte conversations, and
`previous_response_id` / `conversation_id` chaining. Both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import Reply, ScriptedUpstream, reasoning_reply, text_reply, tool_calls_reply

# Tracing would export spans to OpenAI: never from a test.
set_tracing_disabled(True)
RUN_CONFIG = RunConfig(tracing_disabled=True)


@pytest.fixture
async def client(fake_server: RunningServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake_server.base_url, api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


def calculator_agent(client: openai.AsyncOpenAI, calls: list[str]) -> Agent[Any]:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append(f"add({a}, {b})")
        return a + b

    @function_tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        calls.append(f"multiply({a}, {b})")
        return a * b

    return Agent(name="calculator", instructions="Use the tools for arithmetic.", tools=[add, multiply],
                 model=OpenAIResponsesModel(model="fake/m", openai_client=client))


def tool_messages(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["tool_call_id"], m["content"]) for m in request["messages"] if m["role"] == "tool"]


def user_texts(request: dict[str, Any]) -> list[str]:
    texts = []
    for message in request["messages"]:
        if message["role"] == "user":
            content = message["content"]
            texts.append(content if isinstance(content, str) else content[0]["text"])
    return texts


async def test_an_agent_with_two_tools_completes_a_multi_step_task(
    client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    calls: list[str] = []
    upstream.enqueue(tool_calls_reply([("call_add", "add", '{"a": 2, "b": 3}')]),
                     tool_calls_reply([("call_mul", "multiply", '{"a": 5, "b": 4}')]),
                     text_reply("(2 + 3) * 4 = 20"))

    result = await Runner.run(calculator_agent(client, calls), "What is (2 + 3) * 4?", run_config=RUN_CONFIG)

    assert result.final_output == "(2 + 3) * 4 = 20"
    assert calls == ["add(2, 3)", "multiply(5, 4)"]
    assert upstream.requests[0]["messages"][0] == {"role": "system", "content": "Use the tools for arithmetic."}
    assert {t["function"]["name"] for t in upstream.requests[0]["tools"]} == {"add", "multiply"}
    assert tool_messages(upstream.requests[2]) == [("call_add", "5"), ("call_mul", "20")]


async def test_a_session_kept_in_a_riposte_conversation_remembers_the_first_run(
    client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    calls: list[str] = []
    agent = calculator_agent(client, calls)
    session = OpenAIConversationsSession(openai_client=client)
    upstream.enqueue(tool_calls_reply([("call_add", "add", '{"a": 20, "b": 22}')]), text_reply("It is 42."),
                     text_reply("I said 42."))

    first = await Runner.run(agent, "Add 20 and 22.", session=session, run_config=RUN_CONFIG)
    second = await Runner.run(agent, "What did you say?", session=session, run_config=RUN_CONFIG)

    assert (first.final_output, second.final_output) == ("It is 42.", "I said 42.")
    # The second run's history is what Riposte stored for the first: the question, the tool call
    # with its output, and the answer.
    assert user_texts(upstream.requests[2]) == ["Add 20 and 22.", "What did you say?"]
    assert tool_messages(upstream.requests[2]) == [("call_add", "42")]
    stored = [item async for item in client.conversations.items.list(session.session_id, order="asc")]
    assert [item.type for item in stored] == [
        "message", "function_call", "function_call_output", "message", "message", "message"]
    assert (stored[1].call_id, stored[2].output) == ("call_add", "42")  # type: ignore[union-attr]
    assert [stored[3].content[0].text, stored[5].content[0].text] == [  # type: ignore[union-attr]
        "It is 42.", "I said 42."]
    # The session reads back exactly what Riposte holds (the SDK drops provider ids when saving).
    assert [item["id"] for item in await session.get_items()] == [item.id for item in stored]


async def test_previous_response_id_chains_runs(client: openai.AsyncOpenAI, upstream: ScriptedUpstream) -> None:
    calls: list[str] = []
    agent = calculator_agent(client, calls)
    upstream.enqueue(text_reply("Hello Bob."), tool_calls_reply([("call_mul", "multiply", '{"a": 6, "b": 7}')]),
                     text_reply("Bob, it is 42."))

    first = await Runner.run(agent, "I am Bob.", run_config=RUN_CONFIG)
    second = await Runner.run(agent, "Multiply 6 by 7, and say my name.", previous_response_id=first.last_response_id,
                              run_config=RUN_CONFIG)

    assert second.final_output == "Bob, it is 42."
    assert user_texts(upstream.requests[2]) == ["I am Bob.", "Multiply 6 by 7, and say my name."]
    assert [m["role"] for m in upstream.requests[2]["messages"]] == [
        "system", "user", "assistant", "user", "assistant", "tool"]
    stored = await client.responses.retrieve(second.last_response_id or "")
    assert stored.previous_response_id is not None


async def test_conversation_id_runs_keep_tool_steps_in_the_conversation(
    client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    calls: list[str] = []
    conversation = await client.conversations.create()
    upstream.enqueue(tool_calls_reply([("call_add", "add", '{"a": 1, "b": 1}')]), text_reply("Two."))

    result = await Runner.run(calculator_agent(client, calls), "1 + 1?", conversation_id=conversation.id,
                              run_config=RUN_CONFIG)

    assert result.final_output == "Two."
    assert tool_messages(upstream.requests[1]) == [("call_add", "2")]
    stored = [item.type async for item in client.conversations.items.list(conversation.id, order="asc")]
    assert stored == ["message", "function_call", "function_call_output", "message"]


# The zero-data-retention recipe: `store=False` with `response_include=["reasoning.encrypted_content"]`,
# the history carried by the client (`to_input_list()`). Turn 1's reasoning reaches the upstream in turn 2.


def stateless_agent(client: openai.AsyncOpenAI) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    return Agent(name="weather", instructions="Use the tool.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="fake/reasoner", openai_client=client),
                 model_settings=ModelSettings(store=False, response_include=["reasoning.encrypted_content"]))


async def test_reasoning_from_turn_one_reaches_the_upstream_in_turn_two(
    client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    reasoned_call = Reply(deltas=reasoning_reply("Paris needs the weather tool.", "").deltas
                          + tool_calls_reply([("call_w", "get_weather", '{"city": "Paris"}')]).deltas,
                          finish_reason="tool_calls")
    upstream.enqueue(
        reasoned_call,
        reasoning_reply("The tool said sunny; answer briefly.", "Sunny in Paris."),
        text_reply("Tomorrow too."),
    )
    agent = stateless_agent(client)

    first = await Runner.run(agent, "Weather in Paris?", run_config=RUN_CONFIG)
    reasoning_items = [i for i in first.to_input_list() if i.get("type") == "reasoning"]
    assert reasoning_items and all(i.get("encrypted_content") for i in reasoning_items)
    second = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": "Tomorrow?"}],
                              run_config=RUN_CONFIG)

    assert (first.final_output, second.final_output) == ("Sunny in Paris.", "Tomorrow too.")
    turn_two = upstream.requests[-1]["messages"]
    carried = [m["reasoning_content"] for m in turn_two if m.get("reasoning_content")]
    assert carried == ["Paris needs the weather tool.", "The tool said sunny; answer briefly."]
    assert [m["role"] for m in turn_two] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert turn_two[-1] == {"role": "user", "content": "Tomorrow?"}
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.last_response_id or "")
