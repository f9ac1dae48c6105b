"""The record/replay layer: wraps any Upstream in one of the four inference modes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from riposte.auth.principal import current_principal
from riposte.config import InferenceMode
from riposte.errors import ReplayMissError
from riposte.inference.recording import (
    CHUNK_TYPE,
    COMPLETION_TYPE,
    EMBEDDINGS_TYPE,
    MODERATION_TYPE,
    Recording,
    unwrap,
)
from riposte.inference.recording_store import RecordingStore
from riposte.inference.recordings_used import note_recording
from riposte.inference.scope import replay_scope
from riposte.inference.upstream import (
    CHAT_ENDPOINT,
    EMBEDDINGS_ENDPOINT,
    JSON,
    MODERATIONS_ENDPOINT,
    ChunkBatch,
    Upstream,
)
from riposte.store.ownership import DEFAULT_PROJECT

logger = logging.getLogger(__name__)
_RECORDING_MODES = (InferenceMode.RECORD, InferenceMode.RECORD_IF_MISSING)


class RecordReplayUpstream:
    """An Upstream that answers from recordings, records live traffic, or both."""

    def __init__(self, inner: Upstream | None, mode: InferenceMode, store: RecordingStore, base_url: str) -> None:
        self._inner = inner
        self._mode = mode
        self._store = store
        self._base_url = base_url.rstrip("/")

    async def stream_chat(self, body: JSON) -> AsyncGenerator[ChunkBatch]:
        recording = self._lookup(CHAT_ENDPOINT, body)
        if recording is not None:
            note_recording(recording.path, "replayed")
            replayed = _recorded_chunks(recording)  # all there at once, as one read would bring them
            if replayed:
                yield replayed
            return
        chunks: list[JSON] = []
        async with aclosing(self._live().stream_chat(body)) as live:
            try:
                async for batch in live:
                    chunks.extend(batch)
                    yield batch
            except GeneratorExit:
                await self._record_the_rest(body, chunks, live)
                raise
        # Only a stream that ran to its end is worth replaying.
        self._write(CHAT_ENDPOINT, body, chunks, is_streaming=True, type_name=CHUNK_TYPE)

    async def _record_the_rest(self, body: JSON, chunks: list[JSON], live: AsyncGenerator[ChunkBatch]) -> None:
        """The reader stopped early on purpose (a guardrail flagged the answer): when recording, read
        the answer to its end so that replay stops at the same place. Not when the turn is being
        cancelled (the client left), and not if the rest fails: then there is nothing to replay."""
        task = asyncio.current_task()
        if self._mode not in _RECORDING_MODES or (task is not None and task.cancelling()):
            return
        try:
            async for batch in live:
                chunks.extend(batch)
        except Exception as exc:
            logger.warning("the rest of an answer read for its recording failed, so it is not recorded: %s", exc)
            return
        self._write(CHAT_ENDPOINT, body, chunks, is_streaming=True, type_name=CHUNK_TYPE)

    async def chat(self, body: JSON) -> JSON:
        return await self._answer(CHAT_ENDPOINT, body, COMPLETION_TYPE, lambda live: live.chat(body))

    async def embeddings(self, body: JSON) -> JSON:
        return await self._answer(EMBEDDINGS_ENDPOINT, body, EMBEDDINGS_TYPE, lambda live: live.embeddings(body))

    async def moderations(self, body: JSON) -> JSON:
        return await self._answer(MODERATIONS_ENDPOINT, body, MODERATION_TYPE, lambda live: live.moderations(body))

    async def _answer(self, endpoint: str, body: JSON, type_name: str,
                      call: Callable[[Upstream], Awaitable[JSON]]) -> JSON:
        """A single-object call (not streamed): replayed, or made live and recorded."""
        recording = self._lookup(endpoint, body)
        if recording is not None:
            return _recorded_object(recording)
        result = await call(self._live())
        self._write(endpoint, body, result, is_streaming=False, type_name=type_name)
        return result

    async def list_models(self) -> list[str]:
        if self._inner is None:
            return self._store.model_names(CHAT_ENDPOINT) + self._store.model_names(EMBEDDINGS_ENDPOINT)
        return await self._inner.list_models()

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    def _lookup(self, endpoint: str, body: JSON) -> Recording | None:
        if self._mode in (InferenceMode.LIVE, InferenceMode.RECORD):
            return None
        scope = replay_scope.get()
        recording = self._store.find(endpoint, body, scope, recording_project())
        if recording is None and self._mode is InferenceMode.REPLAY:
            raise self._store.miss_error(endpoint, body, scope, recording_project())
        return recording

    def _live(self) -> Upstream:
        if self._inner is None:
            raise ReplayMissError("this provider has no live upstream configured")
        return self._inner

    def _write(self, endpoint: str, body: JSON, response_body: Any, *, is_streaming: bool, type_name: str) -> None:
        if self._mode not in _RECORDING_MODES:
            return
        path = self._store.write(
            endpoint=endpoint,
            url=self._base_url + endpoint.removeprefix("/v1"),
            body=body,
            response_body=response_body,
            is_streaming=is_streaming,
            type_name=type_name,
            scope=replay_scope.get(),
            project=recording_project(),
        )
        note_recording(str(path), "recorded")


def recording_project() -> str | None:
    """The caller's project, which owns what it records; the default project's recordings stay
    unmarked, exactly as before authentication existed."""
    project = current_principal.get().project
    return None if project == DEFAULT_PROJECT else project


def _recorded_chunks(recording: Recording) -> list[JSON]:
    body = recording.response_body
    if recording.is_streaming and isinstance(body, list):
        return [unwrap(chunk) for chunk in body]
    raise ReplayMissError(f"recording {recording.path} is not a streamed chat completion")


def _recorded_object(recording: Recording) -> JSON:
    body = recording.response_body
    if recording.is_streaming:
        raise ReplayMissError(f"recording {recording.path} holds a stream, but a single object was requested")
    data: JSON = unwrap(body)
    return data
