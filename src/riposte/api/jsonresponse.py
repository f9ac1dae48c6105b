"""JSON responses encoded once, with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def list_body(data: list[dict[str, Any]], has_more: bool, **extra: Any) -> dict[str, Any]:
    """The OpenAI list envelope."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
        **extra,
    }
