"""A live OpenAI-compatible backend: streamed chat over `ChatStreamClient`, the rest through the SDK.

Each keeps one connection pool for the server's lifetime.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai
import orjson

from riposte.config import ProviderConfig
from riposte.errors import UpstreamError
from riposte.inference.chat_stream import ChatStreamClient, status_error
from riposte.inference.upstream import JSON
from riposte.observability.request_record import note_upstream_status

# Keys the SDK's `chat.completions.create` signature takes directly; everything else rides in
# `extra_body` so that backend-specific fields (vLLM's `guided_choice`, ...) pass through untouched.
_SDK_CHAT_KEYS = frozenset({"model", "messages", "stream"})


class OpenAICompatibleUpstream:
    def __init__(self, provider: ProviderConfig) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.resolved_api_key(),
            timeout=provider.timeout_seconds,
            max_retries=0,
        )
        self._streams = ChatStreamClient(provider.base_url, provider.resolved_api_key(), provider.timeout_seconds)

    def stream_chat(self, body: JSON) -> AsyncGenerator[JSON]:
        return self._streams.stream(body)

    async def chat(self, body: JSON) -> JSON:
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**_sdk_kwargs(body))
        except openai.APIStatusError as exc:
            note_upstream_status(exc.status_code)
            raise _status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc
        note_upstream_status(raw.status_code)
        parsed: JSON = orjson.loads(raw.content)
        return parsed

    async def embeddings(self, body: JSON) -> JSON:
        try:
            raw = await self._client.embeddings.with_raw_response.create(
                model=body["model"], input=body["input"], extra_body=_without(body, {"model", "input"})
            )
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc
        parsed: JSON = orjson.loads(raw.content)
        return parsed

    async def list_models(self) -> list[str]:
        try:
            page = await self._client.models.list()
        except openai.APIError as exc:
            raise UpstreamError(f"upstream model listing failed: {exc}") from exc
        return [model.id for model in page.data]

    async def aclose(self) -> None:
        await self._streams.aclose()
        await self._client.close()


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
