"""Record/replay for server-side tool runtime calls that leave the machine (web search providers).

The same four inference modes as chat: `live` calls the provider, `record` calls it and writes the
result, `replay` answers from a recording (a miss is an error, and nothing goes out), and
`record-if-missing` replays when it can. Results are the tool message content the model reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from riposte.config import InferenceMode
from riposte.inference.recording_store import RecordingStore
from riposte.inference.scope import replay_scope
from riposte.inference.upstream import JSON

LiveCall = Callable[[], Awaitable[str]]


class RecordedToolCalls:
    def __init__(self, mode: InferenceMode, store: RecordingStore | None) -> None:
        if store is None and mode is not InferenceMode.LIVE:
            raise ValueError(f"inference mode {mode.value} needs a recordings directory")
        self._mode = mode
        self._store = store

    async def invoke(self, provider: str, tool_name: str, kwargs: JSON, live: LiveCall) -> str:
        scope = replay_scope.get()
        if self._store is not None and self._mode in (InferenceMode.REPLAY, InferenceMode.RECORD_IF_MISSING):
            recording = self._store.find_tool_call(provider, tool_name, kwargs, scope)
            if recording is not None:
                return recording.content
            if self._mode is InferenceMode.REPLAY:
                raise self._store.tool_call_miss_error(provider, tool_name, kwargs, scope)
        content = await live()
        if self._store is not None and self._mode in (InferenceMode.RECORD, InferenceMode.RECORD_IF_MISSING):
            self._store.write_tool_call(provider=provider, tool_name=tool_name, kwargs=kwargs, content=content,
                                        scope=scope)
        return content
