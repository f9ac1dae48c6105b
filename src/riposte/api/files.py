"""`/v1/files`: upload (multipart), list, retrieve, content, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from openai.types import FileDeleted, FileObject
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse

from riposte.api.jsonresponse import json_response, list_body
from riposte.api.openapi import multipart_body, returns, returns_list
from riposte.auth.principal import current_principal
from riposte.errors import InvalidRequestError
from riposte.services import Services, services
from riposte.store.pagination import PageRequest

# The form the SDK's `files.create` sends; read by hand (streamed to disk), so described here.
UPLOAD_BODY = multipart_body({"file": {"type": "string", "format": "binary"},
                              "purpose": {"type": "string", "enum": ["assistants", "batch", "fine-tune", "vision",
                                                                     "user_data", "evals"]},
                              "expires_after": {"type": "object"}}, required=["file", "purpose"])
BYTES: dict[int | str, dict[str, Any]] = {200: {"description": "The file's bytes", "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}

router = APIRouter()
_READ_CHUNK = 1024 * 1024


@router.post("/files", openapi_extra=UPLOAD_BODY, responses=returns(FileObject))
async def upload_file(request: Request, svc: Services = Depends(services)) -> Response:
    async with _form(request) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _missing("file")
        purpose = form.get("purpose")
        if not isinstance(purpose, str) or not purpose:
            raise _missing("purpose")
        record = await svc.files.upload(upload.filename or "upload", purpose, _chunks(upload), _expiry(form),
                                        quota_bytes=current_principal.get().limits.file_storage_bytes)
    return json_response(record.as_object())


@asynccontextmanager
async def _form(request: Request) -> AsyncIterator[FormData]:
    """The upload's form, its files closed afterwards; a body Starlette cannot read as one is a 400
    naming the part at fault (`file` when there are several files, else the body) in the envelope."""
    try:
        form = await request.form(max_files=1, max_fields=16)
    except HTTPException as exc:
        param = "file" if "files" in str(exc.detail).lower() else "body"
        raise InvalidRequestError(f"The upload could not be read as multipart form data: {exc.detail}",
                                  param=param, code="invalid_multipart") from exc
    try:
        yield form
    finally:
        await form.close()


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_READ_CHUNK):
        yield chunk


def _expiry(form: FormData) -> int | None:
    """`expires_after[anchor]` and `expires_after[seconds]`, as the SDK encodes the object in a form."""
    anchor = form.get("expires_after[anchor]")
    seconds = form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequestError("expires_after[anchor] must be 'created_at'.", param="expires_after[anchor]",
                                  code="invalid_value")
    if not isinstance(seconds, str) or not seconds.strip().lstrip("-").isdigit():
        raise InvalidRequestError("expires_after[seconds] must be an integer.", param="expires_after[seconds]",
                                  code="invalid_value")
    return int(seconds)


@router.get("/files", responses=returns_list(FileObject))
async def list_files(
    after: str | None = None,
    limit: int = Query(default=10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    purpose: str | None = None,
    svc: Services = Depends(services),
) -> Response:
    page = await svc.files.list(PageRequest(limit=limit, order=order, after=after), purpose)
    return json_response(list_body([record.as_object() for record in page.data], page.has_more))


@router.get("/files/{file_id}", responses=returns(FileObject))
async def retrieve_file(file_id: str, svc: Services = Depends(services)) -> Response:
    return json_response((await svc.files.get(file_id)).as_object())


@router.get("/files/{file_id}/content", responses=BYTES)
async def file_content(file_id: str, svc: Services = Depends(services)) -> Response:
    _record, chunks = await svc.files.content(file_id)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@router.delete("/files/{file_id}", responses=returns(FileDeleted))
async def delete_file(file_id: str, svc: Services = Depends(services)) -> Response:
    await svc.files.delete(file_id, before_delete=svc.vector_stores.detach_everywhere)
    return json_response({"id": file_id, "object": "file", "deleted": True})


def _missing(param: str) -> InvalidRequestError:
    return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param,
                               code="missing_required_parameter")
