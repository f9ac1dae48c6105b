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
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The request body is not valid JSON: {exc}.", param="body",
                                  code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", param="body", code="invalid_json")
    check_depth(data, _max_depth(request))
    return data


def _max_depth(request: Request) -> int:
    services = getattr(request.app.state, "services", None)
    return services.settings.max_json_depth if services is not None else DEFAULT_MAX_JSON_DEPTH


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    data = await json_object(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_value(exc, data) from exc
