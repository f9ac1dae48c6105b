"""The turn's milestones, seen from outside: metrics, spans, warning lines and the request record.

The turn calls one method per milestone; everything an operator sees about a turn is decided
here, so the turn loop stays about the turn.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from riposte.errors import ReplayMissError, RiposteError, UpstreamError
from riposte.observability import metrics
from riposte.observability.request_record import note_error, note_tokens, note_turn
from riposte.observability.tracing import tracer

logger = logging.getLogger("riposte.turn")


class TurnObserver:
    def __init__(self, response_id: str, model: str, provider: str, upstream_model: str) -> None:
        self.response_id = response_id
        self._model = model
        self._provider = provider
        self._upstream_model = upstream_model
        self._started = time.perf_counter()
        self._awaiting_first_chunk = True
        self._call_awaiting_first_chunk = True
        # When the current upstream call's first chunk came (perf_counter), for the turn's trace.
        self.call_first_chunk_at: float | None = None
        self._span: Span = trace.INVALID_SPAN

    def started(self, conversation_id: str | None = None) -> None:
        note_turn(self.response_id, self._model, self._provider)
        attributes: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "riposte",
                                      "gen_ai.provider.name": self._provider,
                                      "gen_ai.request.model": self._upstream_model,
                                      "gen_ai.response.id": self.response_id}
        if conversation_id:
            attributes["gen_ai.conversation.id"] = conversation_id
        self._span = tracer.start_span(f"invoke_agent {self._upstream_model}", kind=SpanKind.INTERNAL,
                                       attributes=attributes)

    def chunk(self) -> None:
        """Called as upstream chunks arrive (once per batch of them is enough); only the first of
        each call is timed."""
        if self._call_awaiting_first_chunk:
            self._call_awaiting_first_chunk = False
            self.call_first_chunk_at = time.perf_counter()
            if self._awaiting_first_chunk:
                self._awaiting_first_chunk = False
                metrics.TIME_TO_FIRST_TOKEN.labels(self._provider, self._upstream_model).observe(
                    self.call_first_chunk_at - self._started)

    def upstream_call(self, body: dict[str, Any]) -> Span:
        self._call_awaiting_first_chunk = True
        self.call_first_chunk_at = None
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": self._provider,
                                      "gen_ai.request.model": self._upstream_model}
        for key, attribute in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p"),
                               ("max_completion_tokens", "gen_ai.request.max_tokens"),
                               ("max_tokens", "gen_ai.request.max_tokens")):
            if body.get(key) is not None:
                attributes[attribute] = body[key]
        return tracer.start_span(f"chat {self._upstream_model}", context=trace.set_span_in_context(self._span),
                                 kind=SpanKind.CLIENT, attributes=attributes)

    @staticmethod
    def upstream_done(span: Span, finish_reason: str | None, usage: dict[str, Any] | None) -> None:
        if finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
        if usage:
            span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens") or 0))
            span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens") or 0))
        span.end()

    @staticmethod
    def upstream_failed(span: Span, error: BaseException) -> None:
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
        span.set_attribute("error.type", getattr(error, "code", None) or type(error).__name__)
        span.end()

    def tool_call(self, tool_type: str, tool_name: str, call_id: str) -> ToolObservation:
        span = tracer.start_span(f"execute_tool {tool_name}", context=trace.set_span_in_context(self._span),
                                 kind=SpanKind.INTERNAL,
                                 attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool_name,
                                             "gen_ai.tool.type": tool_type, "gen_ai.tool.call.id": call_id})
        return ToolObservation(self.response_id, tool_type, tool_name, span)

    def finished(self, status: str, usage: dict[str, Any], failure: RiposteError | None = None) -> None:
        tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        note_tokens(tokens_in, tokens_out)
        labels = (self._provider, self._upstream_model)
        metrics.TOKENS.labels(*labels, "input").inc(tokens_in)
        metrics.TOKENS.labels(*labels, "output").inc(tokens_out)
        metrics.RESPONSES.labels(*labels, status).inc()
        self._span.set_attribute("gen_ai.usage.input_tokens", tokens_in)
        self._span.set_attribute("gen_ai.usage.output_tokens", tokens_out)
        self._span.set_attribute("riposte.response.status", status)
        if failure is not None:
            report_failure(failure, self._provider, self.response_id)
            self._span.set_status(Status(StatusCode.ERROR, failure.message))
            self._span.set_attribute("error.type", failure.code or type(failure).__name__)
        self._span.end()


class ToolObservation:
    def __init__(self, response_id: str, tool_type: str, tool_name: str, span: Span) -> None:
        self._response_id = response_id
        self._tool_type = tool_type
        self._tool_name = tool_name
        self._span = span
        self._started = time.perf_counter()

    def done(self, failed: bool, cause: str | None = None) -> None:
        metrics.TOOL_CALLS.labels(self._tool_type, "failed" if failed else "completed").inc()
        metrics.TOOL_SECONDS.labels(self._tool_type).observe(time.perf_counter() - self._started)
        if failed:
            logger.warning("tool call failed", extra={"fields": {
                "response_id": self._response_id, "tool": self._tool_name, "tool_type": self._tool_type,
                "cause": cause or "unknown"}})
            self._span.set_status(Status(StatusCode.ERROR, cause or "tool call failed"))
        self._span.end()


def failure_kind(error: RiposteError) -> str:
    if isinstance(error, ReplayMissError):
        return "replay_miss"
    return error.code or type(error).__name__


def report_failure(error: RiposteError, provider: str | None, response_id: str | None = None) -> None:
    """Log a failed turn or upstream call once per request, with its cause, and count it."""
    if not note_error(error.message):
        return
    kind = failure_kind(error)
    if isinstance(error, UpstreamError | ReplayMissError):
        metrics.UPSTREAM_ERRORS.labels(provider or "unknown", kind).inc()
    fields: dict[str, Any] = {"kind": kind, "cause": error.message}
    if response_id:
        fields["response_id"] = response_id
    if provider:
        fields["provider"] = provider
    logger.warning("replay miss" if kind == "replay_miss" else "request failed", extra={"fields": fields})
