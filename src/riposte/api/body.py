"""Reading JSON request bodies with errors in the OpenAI envelope."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from riposte.errors import InvalidRequestError
from riposte.json_depth import DEFAULT_MAX_JSON_DEPTH, check_depth
from riposte.param_path import invalid_value

ModelT = TypeVar("ModelT", bound=BaseModel)


async def json_object(request: Request) -> dict[str, Any]:
    return decode_json_object(await request.body(), _max_depth(request), "The request body")


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
    return validated(await json_object(request), model)


def validated(data: dict[str, Any], model: type[ModelT]) -> ModelT:
    """`data` as `model`, or a 400 naming the first parameter that does not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_value(exc, data) from exc
