"""What a turn did, step by step, for the web inspector: each upstream call (the request body as
sent, the answer assembled from what the turn already holds, timing, tokens, the recording it
replayed), each server-side tool call (arguments, what went back to the model, duration) and each
guardrail check (the text read, the verdict).

Nothing here runs per token: a step is noted once per upstream call and once per tool call, and
the whole trace is written with the turn's final store write (store/traces.py). A turn that is
not stored, or a server with capture off, has no trace at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from riposte.engine.response_object import ResponseObject
from riposte.engine.stream_state import CallResult, ToolCall
from riposte.errors import ReplayMissError, RiposteError
from riposte.guardrails.guards import GuardCheck
from riposte.inference.recordings_used import recordings_used
from riposte.tools.base import ToolRun

Step = dict[str, Any]
# Longest tool result kept in a trace step; the model's own copy is in the next call's body.
MAX_TOOL_RESULT_CHARS = 20_000
# Longest text a guardrail check step keeps (an output window is far shorter; an input may not be).
MAX_CHECKED_TEXT_CHARS = 20_000

# Turns of this process in flight, by response id: the inspector's live view reads their response
# object as the turn updates it. Registered when a traced turn starts, removed when it ends.
running: dict[str, TurnTrace] = {}


class TurnTrace:
    def __init__(self, response: ResponseObject, inherited: tuple[str, list[Any]] | None = None) -> None:
        self.response = response
        self.steps: list[Step] = []
        # (response id, its chat messages): the stored history a `previous_response_id` turn
        # continues. Its first upstream call resends them; the step names them instead of keeping
        # a copy (`request_history`), so a chain's traces grow with each turn's own messages only.
        self.inherited = inherited
        # The messages the previous upstream call of this turn sent: a later call of the turn
        # resends them, so its step keeps only what it added (`request_shared_messages`).
        self.last_messages: list[Any] = []
        # What the turn's upstream call is streaming right now (ResponseStream.partial_output).
        self.partial_output: Callable[[], dict[str, str]] | None = None

    def started(self, partial_output: Callable[[], dict[str, str]] | None = None) -> None:
        self.partial_output = partial_output
        running[self.response["id"]] = self

    def ended(self) -> None:
        running.pop(self.response["id"], None)

    def upstream_started(self) -> UpstreamStep:
        return UpstreamStep(self)

    def tool_started(self, tool_type: str, call: ToolCall) -> ToolStep:
        return ToolStep(self, tool_type, call)

    def guard_checked(self, check: GuardCheck) -> None:
        """A guardrail's check, as a step. The text it read is kept even when flagged: the trace is
        for operators, and the timeline shows a flagged text only in this step, marked as such."""
        self.steps.append({
            "kind": "guardrail_check", "guard": check.guard, "guard_type": check.guard_type, "stage": check.stage,
            "started_at": check.started_at, "duration_ms": check.duration_ms, "outcome": check.outcome,
            "categories": list(check.categories), "error": check.error,
            "text": check.text[:MAX_CHECKED_TEXT_CHARS], "text_chars": len(check.text)})


class UpstreamStep:
    """One upstream call being traced; `answered` or `failed` ends it."""

    def __init__(self, trace: TurnTrace) -> None:
        self._trace = trace
        # The call's place among the steps: the output checks made while it streams come after it.
        self._at = len(trace.steps)
        self._started_at = time.time()
        self._started = time.perf_counter()
        self._recordings: list[dict[str, str]] = []
        recordings_used.set(self._recordings)

    def answered(self, body: dict[str, Any], result: CallResult, first_chunk_at: float | None) -> None:
        step = self._common(body)
        step["answer"] = assembled_completion(result)
        if first_chunk_at is not None:
            step["first_chunk_ms"] = round((first_chunk_at - self._started) * 1000, 1)
        self._trace.steps.insert(self._at, step)

    def failed(self, body: dict[str, Any], error: BaseException) -> None:
        step = self._common(body)
        step["error"] = error_record(error)
        self._trace.steps.insert(self._at, step)

    def _common(self, body: dict[str, Any]) -> Step:
        recordings_used.set(None)
        step: Step = {"kind": "upstream_call", "started_at": self._started_at,
                      "duration_ms": round((time.perf_counter() - self._started) * 1000, 1),
                      "request": body, "recordings": self._recordings}
        messages = body.get("messages")
        if isinstance(messages, list):
            shared = len(self._trace.last_messages)
            if shared and messages[:shared] == self._trace.last_messages:
                step["request"] = {**body, "messages": messages[shared:]}
                step["request_shared_messages"] = shared
            elif not shared and self._trace.inherited is not None:
                _name_history(step, messages, *self._trace.inherited)
            self._trace.last_messages = messages
        return step


def _name_history(step: Step, messages: list[Any], response_id: str, history: list[Any]) -> None:
    """Leave out the inherited history where the call sent it whole (after the instructions, if any)."""
    count = len(history)
    for at in (0, 1):
        if count and messages[at:at + count] == history:
            step["request"] = {**step["request"], "messages": messages[:at] + messages[at + count:]}
            step["request_history"] = {"response": response_id, "at": at, "messages": count}
            return


def history_reference(steps: Sequence[Step]) -> str | None:
    """The response whose stored messages the trace names instead of keeping (see TurnTrace.inherited)."""
    for step in steps:
        if step.get("request_history"):
            return str(step["request_history"]["response"])
    return None


def full_requests(steps: Sequence[Step], history: list[Any] | None = None) -> list[dict[str, Any]]:
    """Each step's request body as sent (empty for tool steps): the leading messages an upstream
    call shared with the turn's previous call put back, and the inherited history (`history`, the
    messages of the response `history_reference` names; None when it is no longer stored, shown as
    one placeholder message)."""
    bodies: list[dict[str, Any]] = []
    previous: list[Any] = []
    for step in steps:
        request: dict[str, Any] = step.get("request") or {}
        if step.get("kind") != "upstream_call":
            bodies.append({})
            continue
        shared = int(step.get("request_shared_messages") or 0)
        named = step.get("request_history")
        if shared:
            request = {**request, "messages": previous[:shared] + list(request.get("messages") or [])}
        elif named:
            own = list(request.get("messages") or [])
            inherited = history if history is not None else [{
                "role": "(history)", "content": f"{named['messages']} earlier messages of {named['response']}, "
                                                "no longer stored"}]
            request = {**request, "messages": own[:named["at"]] + list(inherited) + own[named["at"]:]}
        previous = list(request.get("messages") or [])
        bodies.append(request)
    return bodies


class ToolStep:
    def __init__(self, trace: TurnTrace, tool_type: str, call: ToolCall) -> None:
        self._trace = trace
        self._step: Step = {"kind": "tool_call", "tool_type": tool_type, "name": call.name, "call_id": call.call_id,
                            "arguments": call.arguments, "started_at": time.time()}
        self._started = time.perf_counter()

    def done(self, run: ToolRun) -> None:
        content = run.tool_message_content
        result = content if isinstance(content, str) else _text_parts(content)
        self._step.update(duration_ms=round((time.perf_counter() - self._started) * 1000, 1), failed=run.failed,
                          result=result[:MAX_TOOL_RESULT_CHARS], result_truncated=len(result) > MAX_TOOL_RESULT_CHARS,
                          status=run.item.get("status"), error=run.item.get("error"), sources=list(run.sources))
        self._trace.steps.append(self._step)


def assembled_completion(result: CallResult) -> dict[str, Any]:
    """The streamed answer as one chat completion message, the way a non-streamed call returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.refusal:
        message["refusal"] = result.refusal
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = [{"id": c.call_id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in result.tool_calls]
    return {"object": "chat.completion", "finish_reason": result.finish_reason, "message": message,
            "usage": result.usage}


def error_record(error: BaseException) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error) or type(error).__name__}
    if isinstance(error, RiposteError):
        record.update(message=error.message, code=error.code, status=error.status_code)
    if isinstance(error, ReplayMissError) and error.closest_recording is not None:
        record["closest_recording"] = error.closest_recording
    return record


def _text_parts(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
