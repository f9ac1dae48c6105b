"""`/v1/vector_stores`: stores, their files, file batches, and search."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from openai.types import VectorStore, VectorStoreDeleted, VectorStoreSearchResponse
from openai.types.vector_stores import (
    FileContentResponse,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)

from riposte.api.body import parse_body
from riposte.api.jsonresponse import json_response, list_body
from riposte.api.openapi import body, returns, returns_list
from riposte.errors import InvalidRequestError
from riposte.services import Services, services
from riposte.store.pagination import PageRequest
from riposte.store.vector_stores import FileStatus
from riposte.vectors.chunking import ChunkingStrategy, parse_chunking_strategy
from riposte.vectors.filters import parse_filter
from riposte.vectors.index import SearchMode
from riposte.vectors.objects import search_page
from riposte.vectors.ranking import HybridWeights
from riposte.vectors.requests import (
    AttachFileBody,
    CreateBatchBody,
    CreateStoreBody,
    SearchBody,
    UpdateFileBody,
    UpdateStoreBody,
    check_attributes,
)
from riposte.vectors.service import Attachment, NewStore, SearchRequest

router = APIRouter()


def page_request(
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    before: str | None = None,
) -> PageRequest:
    return PageRequest(limit=limit, order=order, after=after, before=before)


# ---------------------------------------------------------------------- stores


@router.post("/vector_stores", openapi_extra=body(CreateStoreBody), responses=returns(VectorStore))
async def create_store(request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, CreateStoreBody)
    new = NewStore(
        name=body.name or "", description=body.description, metadata=body.metadata or {},
        expires_after_days=body.expires_after.days if body.expires_after else None,
        embedding_model=body.embedding_model, embedding_dimension=body.embedding_dimension,
        file_ids=body.file_ids or [], strategy=parse_chunking_strategy(body.chunking_strategy),
    )
    return json_response(await svc.vector_stores.create_store(new))


@router.get("/vector_stores", responses=returns_list(VectorStore))
async def list_stores(page: PageRequest = Depends(page_request), svc: Services = Depends(services)) -> Response:
    data, has_more = await svc.vector_stores.list_stores(page)
    return json_response(list_body(data, has_more))


@router.get("/vector_stores/{store_id}", responses=returns(VectorStore))
async def retrieve_store(store_id: str, svc: Services = Depends(services)) -> Response:
    return json_response(await svc.vector_stores.retrieve_store(store_id))


@router.post("/vector_stores/{store_id}", openapi_extra=body(UpdateStoreBody), responses=returns(VectorStore))
async def update_store(store_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, UpdateStoreBody)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.metadata is not None:
        changes["metadata"] = body.metadata
    if "expires_after" in body.model_fields_set:
        changes["expires_after_days"] = body.expires_after.days if body.expires_after else None
    return json_response(await svc.vector_stores.update_store(store_id, changes))


@router.delete("/vector_stores/{store_id}", responses=returns(VectorStoreDeleted))
async def delete_store(store_id: str, svc: Services = Depends(services)) -> Response:
    await svc.vector_stores.delete_store(store_id)
    return json_response({"id": store_id, "object": "vector_store.deleted", "deleted": True})


@router.post("/vector_stores/{store_id}/search",
             openapi_extra=body(SearchBody),
             responses=returns_list(VectorStoreSearchResponse))
async def search_store(store_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, SearchBody)
    queries = [body.query] if isinstance(body.query, str) else body.query
    if not queries or not all(q.strip() for q in queries):
        raise InvalidRequestError("query must be a non-empty string or a list of them.", param="query",
                                  code="invalid_value")
    if body.rewrite_query:
        raise InvalidRequestError("rewrite_query is not supported by this server.", param="rewrite_query",
                                  code="unsupported_value")
    hits = await svc.vector_stores.search(store_id, _search_request(body, queries))
    return json_response(search_page(queries, hits))


def _search_request(body: SearchBody, queries: list[str]) -> SearchRequest:
    ranking = body.ranking_options
    hybrid = ranking.hybrid_search if ranking is not None else None
    if body.search_mode is not None:
        mode = SearchMode(body.search_mode)
    else:
        mode = SearchMode.HYBRID if hybrid is not None else SearchMode.VECTOR
    threshold = ranking.score_threshold if ranking is not None else None
    return SearchRequest(
        queries=queries, max_num_results=body.max_num_results, mode=mode,
        filters=parse_filter(body.filters) if body.filters is not None else None,
        score_threshold=threshold if threshold is not None else 0.0,
        weights=HybridWeights(hybrid.embedding_weight, hybrid.text_weight) if hybrid is not None else HybridWeights(),
    )


# ---------------------------------------------------------------------- files in a store


@router.post("/vector_stores/{store_id}/files", openapi_extra=body(AttachFileBody), responses=returns(VectorStoreFile))
async def attach_file(store_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, AttachFileBody)
    attachment = Attachment(file_id=body.file_id, attributes=check_attributes(body.attributes),
                            strategy=parse_chunking_strategy(body.chunking_strategy))
    return json_response(await svc.vector_stores.attach_file(store_id, attachment))


@router.get("/vector_stores/{store_id}/files", responses=returns_list(VectorStoreFile))
async def list_store_files(
    store_id: str,
    page: PageRequest = Depends(page_request),
    status: FileStatus | None = Query(default=None, alias="filter"),
    svc: Services = Depends(services),
) -> Response:
    data, has_more = await svc.vector_stores.list_files(store_id, page, status)
    return json_response(list_body(data, has_more))


@router.get("/vector_stores/{store_id}/files/{file_id}", responses=returns(VectorStoreFile))
async def retrieve_store_file(store_id: str, file_id: str, svc: Services = Depends(services)) -> Response:
    return json_response(await svc.vector_stores.retrieve_file(store_id, file_id))


@router.post("/vector_stores/{store_id}/files/{file_id}",
             openapi_extra=body(UpdateFileBody),
             responses=returns(VectorStoreFile))
async def update_store_file(store_id: str, file_id: str, request: Request,
                            svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, UpdateFileBody)
    attributes = check_attributes(body.attributes)
    return json_response(await svc.vector_stores.update_file_attributes(store_id, file_id, attributes))


@router.delete("/vector_stores/{store_id}/files/{file_id}", responses=returns(VectorStoreFileDeleted))
async def detach_store_file(store_id: str, file_id: str, svc: Services = Depends(services)) -> Response:
    await svc.vector_stores.detach_file(store_id, file_id)
    return json_response({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})


@router.get("/vector_stores/{store_id}/files/{file_id}/content", responses=returns_list(FileContentResponse))
async def store_file_content(store_id: str, file_id: str, svc: Services = Depends(services)) -> Response:
    parts = await svc.vector_stores.file_content(store_id, file_id)
    return json_response({"object": "vector_store.file_content.page", "data": parts, "has_more": False,
                          "next_page": None})


# ---------------------------------------------------------------------- file batches


@router.post("/vector_stores/{store_id}/file_batches",
             openapi_extra=body(CreateBatchBody),
             responses=returns(VectorStoreFileBatch))
async def create_batch(store_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, CreateBatchBody)
    return json_response(await svc.vector_stores.create_batch(store_id, _batch_attachments(body)))


def _batch_attachments(body: CreateBatchBody) -> list[Attachment]:
    if body.files is not None and body.file_ids is not None:
        raise InvalidRequestError("Give either file_ids or files, not both.", param="files")
    if body.files is not None:
        return [Attachment(file_id=entry.file_id,
                           attributes=check_attributes(entry.attributes, f"files[{index}].attributes"),
                           strategy=parse_chunking_strategy(entry.chunking_strategy,
                                                            f"files[{index}].chunking_strategy"))
                for index, entry in enumerate(body.files)]
    attributes = check_attributes(body.attributes)
    strategy: ChunkingStrategy = parse_chunking_strategy(body.chunking_strategy)
    return [Attachment(file_id=file_id, attributes=attributes, strategy=strategy) for file_id in body.file_ids or []]


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}", responses=returns(VectorStoreFileBatch))
async def retrieve_batch(store_id: str, batch_id: str, svc: Services = Depends(services)) -> Response:
    return json_response(await svc.vector_stores.retrieve_batch(store_id, batch_id))


@router.post("/vector_stores/{store_id}/file_batches/{batch_id}/cancel", responses=returns(VectorStoreFileBatch))
async def cancel_batch(store_id: str, batch_id: str, svc: Services = Depends(services)) -> Response:
    return json_response(await svc.vector_stores.cancel_batch(store_id, batch_id))


@router.get("/vector_stores/{store_id}/file_batches/{batch_id}/files", responses=returns_list(VectorStoreFile))
async def list_batch_files(
    store_id: str,
    batch_id: str,
    page: PageRequest = Depends(page_request),
    status: FileStatus | None = Query(default=None, alias="filter"),
    svc: Services = Depends(services),
) -> Response:
    await svc.vector_stores.retrieve_batch(store_id, batch_id)
    data, has_more = await svc.vector_stores.list_files(store_id, page, status, batch_id=batch_id)
    return json_response(list_body(data, has_more))
