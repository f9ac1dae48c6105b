"""A model call the turn makes outside its model loop (a compaction's summary), shown to the
turn's observer (logs, metrics, OpenTelemetry) and inspector trace like the loop's own calls."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

from riposte.engine.stream_state import CallResult
from riposte.engine.turn_trace import TurnTrace, UpstreamStep
from riposte.observability.turn_observer import TurnObserver


class ObservedCall:
    """A `summarize.CallWatcher` over a turn's observer and trace."""

    def __init__(self, observer: TurnObserver, trace: TurnTrace | None) -> None:
        self._observer = observer
        self._trace = trace
        self._span: Span | None = None
        self._step: UpstreamStep | None = None

    def started(self, body: dict[str, Any]) -> None:
        self._span = self._observer.upstream_call(body)
        self._step = self._trace.upstream_started() if self._trace is not None else None

    def chunk(self) -> None:
        self._observer.chunk()

    def answered(self, body: dict[str, Any], text: str, finish_reason: str | None,
                 usage: dict[str, Any] | None) -> None:
        if self._span is not None:
            self._observer.upstream_done(self._span, finish_reason, usage)
        if self._step is not None:
            result = CallResult(text=text, refusal=None, reasoning="", tool_calls=[], finish_reason=finish_reason,
                                usage=usage)
            self._step.answered(body, result, self._observer.call_first_chunk_at)

    def failed(self, body: dict[str, Any], error: BaseException) -> None:
        if self._span is not None:
            self._observer.upstream_failed(self._span, error)
        if self._step is not None:
            self._step.failed(body, error)
