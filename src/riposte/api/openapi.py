"""The served OpenAPI document: every request body and every reply, from the models themselves.

Handlers read their bodies with `parse_body` (errors in the OpenAI envelope), so FastAPI cannot
see them; each route names its body model with `openapi_extra=body(Model)`, the same model
`parse_body` validates with, and its reply with `responses=returns(Type)`, the official SDK's
wire type. Their JSON schemas share one set of components, hoisted when the document is built.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

from riposte import __version__

_REF = "#/components/schemas/{model}"
# Every component any body or reply refers to, by name; filled as routes are declared.
_components: dict[str, Any] = {}


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    """Every 4xx and 5xx, as OpenAI sends them."""

    error: ErrorBody


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool


def schema_of(tp: Any) -> dict[str, Any]:
    """A schema referring to shared components for `tp` (a pydantic model, a TypedDict, ...)."""
    return dict(_schema_of(tp))


@cache
def _schema_of(tp: Any) -> tuple[tuple[str, Any], ...]:
    schema = TypeAdapter(tp).json_schema(ref_template=_REF)
    _components.update(schema.pop("$defs", {}))
    title = schema.get("title")
    if isinstance(title, str) and "properties" in schema:
        # Named models become components themselves, so large ones appear once in the document.
        _components.setdefault(title, schema)
        return (("$ref", _REF.format(model=title)),)
    return tuple(schema.items())


def body(tp: Any, *, media_type: str = "application/json") -> dict[str, Any]:
    """`openapi_extra` for a route whose handler validates its JSON body with `tp`."""
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema_of(tp)}}}}


def multipart_body(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": fields, "required": required}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def returns(tp: Any, *, streams: bool = False, description: str = "OK") -> dict[int | str, Any]:
    """`responses` for a route answering `tp` (and, with `streams`, server-sent events)."""
    content: dict[str, Any] = {"application/json": {"schema": schema_of(tp)}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string", "description":
                                                   "`event: <type>` and `data: <event JSON>` lines, then "
                                                   "`data: [DONE]`"}}
    error = {"content": {"application/json": {"schema": schema_of(ErrorEnvelope)}}}
    return {200: {"description": description, "content": content}, "4XX": {"description": "Invalid request",
                                                                            **error},
            "5XX": {"description": "Server or upstream failure", **error}}


def list_of(item: Any) -> dict[str, Any]:
    """The OpenAI list envelope around `item`, as a plain schema."""
    return {"type": "object", "required": ["object", "data", "has_more"], "properties": {
        "object": {"const": "list"}, "data": {"type": "array", "items": schema_of(item)},
        "first_id": {"type": ["string", "null"]}, "last_id": {"type": ["string", "null"]},
        "has_more": {"type": "boolean"}}}


def returns_list(item: Any) -> dict[int | str, Any]:
    replies = returns(ErrorEnvelope)
    replies[200] = {"description": "OK", "content": {"application/json": {"schema": list_of(item)}}}
    return replies


def install_openapi(app: FastAPI) -> None:
    """Build the document once, on first request, with the shared components in it."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title="Riposte", version=__version__, routes=app.routes,
                               description="The OpenAI Responses API over any Chat Completions backend.")
            spec.setdefault("components", {}).setdefault("schemas", {}).update(_components)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
