"""Reading JSON request bodies with errors in the OpenAI envelope."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from riposte.errors import InvalidRequestError
from riposte.json_depth import DEFAULT_MAX_JSON_DEPTH, check_depth
from riposte.param_path import invalid_value

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
_BODY = "The request body"


# Bodies larger than this are decoded, depth-checked and validated in a worker thread: a body of
# many small items takes seconds of pure-Python walking (200k items: about 1 s for the depth check
# alone), which on the event loop would hold up every other request and stream. The thread still
# needs the GIL, but yields it every switch interval, so the loop keeps serving meanwhile.
OFF_LOOP_BYTES = 256 * 1024


async def json_object(request: Request) -> dict[str, Any]:
    return await _read(request, partial(decode_json_object, max_depth=_max_depth(request), what=_BODY))


async def _read(request: Request, parse: Callable[[bytes], T]) -> T:
    """`parse` of the request body: in a worker thread when the body is large (OFF_LOOP_BYTES)."""
    raw = await request.body()
    return await anyio.to_thread.run_sync(parse, raw) if len(raw) > OFF_LOOP_BYTES else parse(raw)


def decode_json_object(raw: bytes | str, max_depth: int, what: str, param: str = "body") -> dict[str, Any]:
    """One JSON object, nested at most `max_depth` levels (an HTTP body, a WebSocket message)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"{what} is not valid JSON: {exc}.", param=param, code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{what} must be a JSON object.", param=param, code="invalid_json")
    check_depth(data, max_depth)
    return data


def _max_depth(request: Request) -> int:
    services = getattr(request.app.state, "services", None)
    return services.settings.max_json_depth if services is not None else DEFAULT_MAX_JSON_DEPTH


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    return await _read(request, partial(_parsed, max_depth=_max_depth(request), model=model))


def _parsed(raw: bytes, *, max_depth: int, model: type[ModelT]) -> ModelT:
    return validated(decode_json_object(raw, max_depth, _BODY), model)


def validated(data: dict[str, Any], model: type[ModelT]) -> ModelT:
    """`data` as `model`, or a 400 naming the first parameter that does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_value(exc, data) from exc
