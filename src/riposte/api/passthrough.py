"""`/v1/chat/completions` and `/v1/embeddings`, routed and recorded like the engine's own calls."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openai.types import CreateEmbeddingResponse, EmbeddingCreateParams
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsBase

from riposte.api.body import json_object
from riposte.api.jsonresponse import json_response
from riposte.api.openapi import body, returns
from riposte.api.sse import data_stream_response
from riposte.errors import InvalidRequestError, RiposteError
from riposte.inference.upstream import ChunkBatch
from riposte.services import Services, services

router = APIRouter()


@router.post("/chat/completions",
             openapi_extra=body(CompletionCreateParamsBase),
             responses=returns(ChatCompletion, streams=True))
async def chat_completions(request: Request, svc: Services = Depends(services)) -> Response:
    body = await json_object(request)
    route = svc.router.resolve(_model(body))
    if not isinstance(body.get("messages"), list):
        # Checked here: the SDK client that carries the call would raise a TypeError, not a 400.
        raise InvalidRequestError("Missing required parameter: 'messages' (a list of messages).",
                                  param="messages", code="missing_required_parameter")
    upstream_body = {**body, "model": route.upstream_model}
    if not body.get("stream"):
        return json_response(await route.upstream.chat(upstream_body))
    batches = route.upstream.stream_chat(upstream_body)
    # Pull the first chunks before answering, so an upstream failure still gets a real status code.
    try:
        first = await anext(batches, None)
    except BaseException:
        await batches.aclose()
        raise
    return data_stream_response(_prepend(first, batches))


@router.post("/embeddings", openapi_extra=body(EmbeddingCreateParams), responses=returns(CreateEmbeddingResponse))
async def embeddings(request: Request, svc: Services = Depends(services)) -> Response:
    body = await json_object(request)
    route = svc.router.resolve(_model(body))
    if "input" not in body:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input",
                                  code="missing_required_parameter")
    return json_response(await route.upstream.embeddings({**body, "model": route.upstream_model}))


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("Missing required parameter: 'model'.", param="model",
                                  code="missing_required_parameter")
    return model


async def _prepend(first: ChunkBatch | None, rest: AsyncGenerator[ChunkBatch]) -> AsyncGenerator[ChunkBatch]:
    async with aclosing(rest) as batches:
        if first is not None:
            yield first
        try:
            async for batch in batches:
                yield batch
        except RiposteError as exc:
            # Headers are gone already; OpenAI-compatible clients read an `error` data line, and
            # the stream still ends with `[DONE]`.
            yield [exc.envelope()]
