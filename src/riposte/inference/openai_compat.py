"""A live OpenAI-compatible backend: streamed chat over `ChatStreamClient`, the rest through the SDK.

Each keeps one connection pool for the server's lifetime.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

import httpx2 as httpx
import openai
import orjson

from riposte.config import ProviderConfig
from riposte.errors import UpstreamError
from riposte.inference.chat_stream import ChatStreamClient, status_error
from riposte.inference.deadlines import Deadlines, deadline_error
from riposte.inference.stale_connections import StaleRetryTransport
from riposte.inference.upstream import JSON, ChunkBatch
from riposte.observability.request_record import note_upstream_status

T = TypeVar("T")

# Keys the SDK's `chat.completions.create` signature takes directly; everything else rides in
# `extra_body` so that backend-specific fields (vLLM's `guided_choice`, ...) pass through untouched.
_SDK_CHAT_KEYS = frozenset({"model", "messages", "stream"})


class OpenAICompatibleUpstream:
    def __init__(self, provider: ProviderConfig) -> None:
        self._deadlines = Deadlines.of(provider)
        # A whole answer arrives at once here, after the model has finished: the first-byte
        # deadline bounds each wait for data, the total deadline the call.
        timeout = httpx.Timeout(self._deadlines.first_byte, connect=self._deadlines.connect)
        self._client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.resolved_api_key(),
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                timeout=timeout, transport=StaleRetryTransport(provider.keepalive_seconds)),
        )
        self._streams = ChatStreamClient(provider.base_url, provider.resolved_api_key(), self._deadlines,
                                         provider.keepalive_seconds, provider.paced_read_window_ms / 1000,
                                         provider.paced_read_window_max_ms / 1000)

    def stream_chat(self, body: JSON) -> AsyncGenerator[ChunkBatch]:
        return self._streams.stream(body)

    async def chat(self, body: JSON) -> JSON:
        try:
            raw = await self._call(self._client.chat.completions.with_raw_response.create(**_sdk_kwargs(body)))
        except UpstreamError as exc:
            if isinstance(exc.__cause__, openai.APIStatusError):
                note_upstream_status(exc.__cause__.status_code)
            raise
        note_upstream_status(raw.status_code)
        return _json_body(raw.content)

    async def embeddings(self, body: JSON) -> JSON:
        raw = await self._call(self._client.embeddings.with_raw_response.create(
            model=body["model"], input=body["input"], extra_body=_without(body, {"model", "input"})
        ))
        return _json_body(raw.content)

    async def moderations(self, body: JSON) -> JSON:
        raw = await self._call(self._client.moderations.with_raw_response.create(
            model=body["model"], input=body["input"], extra_body=_without(body, {"model", "input"})
        ))
        return _json_body(raw.content)

    async def list_models(self) -> list[str]:
        page = await self._call(self._client.models.list())
        return [model.id for model in page.data]

    async def _call(self, request: Awaitable[T]) -> T:
        """One SDK call within the deadlines, its failures as `UpstreamError`s naming the cause."""
        try:
            async with asyncio.timeout(self._deadlines.total):
                return await request
        except TimeoutError as exc:
            raise deadline_error("total", self._deadlines.total) from exc
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APITimeoutError as exc:
            if isinstance(exc.__cause__, httpx.ConnectTimeout):
                raise deadline_error("connect", self._deadlines.connect) from exc
            raise deadline_error("first-byte", self._deadlines.first_byte) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc

    async def aclose(self) -> None:
        await self._streams.aclose()
        await self._client.close()


def _json_body(content: bytes) -> JSON:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"upstream sent a body that is not JSON ({exc}): "
                            f"{content[:200].decode(errors='replace')}") from exc
    if not isinstance(parsed, dict):
        raise UpstreamError("upstream sent a JSON body that is not an object")
    return parsed


def _sdk_kwargs(body: JSON) -> dict[str, Any]:
    kwargs: dict[str, Any] = {k: v for k, v in body.items() if k in _SDK_CHAT_KEYS}
    extra = _without(body, _SDK_CHAT_KEYS)
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _without(body: JSON, keys: frozenset[str] | set[str]) -> JSON:
    return {k: v for k, v in body.items() if k not in keys}


def _status_error(exc: openai.APIStatusError) -> UpstreamError:
    return status_error(exc.status_code, exc.body if exc.body is not None else exc.message)
