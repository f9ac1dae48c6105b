"""`/v1/models` and the health check."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from openai.types import Model
from pydantic import BaseModel

from riposte.api.jsonresponse import json_response
from riposte.api.openapi import returns_list
from riposte.services import Services, services

router = APIRouter()


@router.get("/models", responses=returns_list(Model))
async def list_models(svc: Services = Depends(services)) -> Response:
    ids = await svc.router.list_model_ids()
    data = [{"id": model_id, "object": "model", "created": 0, "owned_by": model_id.split("/", 1)[0]}
            for model_id in ids]
    return json_response({"object": "list", "data": data})


class Health(BaseModel):
    status: str


@router.get("/health")
async def health() -> Response:
    return json_response({"status": "ok"})
