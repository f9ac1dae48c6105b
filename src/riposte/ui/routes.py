"""The inspector's pages under /ui. Handlers fetch (the viewer's project only), views shape
(ui/views.py), templates render; nothing is built at run time."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import Scope

from riposte.api.sse import event_stream_response
from riposte.engine.resume import follow
from riposte.engine.turn_trace import full_requests, history_reference, running
from riposte.errors import InvalidRequestError, NotFoundError, RiposteError
from riposte.inference.record_replay import recording_project
from riposte.inference.recording import normalize_body
from riposte.services import Services
from riposte.store.pagination import PageRequest
from riposte.ui import queries, views
from riposte.ui.access import InspectorOff, LoginRequired, Viewer, inspector_open, viewer
from riposte.ui.search import compare_modes
from riposte.ui.session import (
    CSRF_FIELD,
    clear_session_cookie,
    csrf_token,
    csrf_valid,
    sealed_session,
    set_cookies,
    set_session_cookie,
)

_HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)
router = APIRouter(prefix="/ui", include_in_schema=False)
_STATUSES = ("completed", "failed", "in_progress", "incomplete", "cancelled", "queued")


def install_inspector(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", _InspectorStatic(directory=_HERE / "static"), name="inspector-static")
    app.add_exception_handler(LoginRequired, _to_login)  # type: ignore[arg-type]
    app.add_exception_handler(InspectorOff, _off)


class _InspectorStatic(StaticFiles):
    """The inspector's scripts and styles, which exist only when its pages do (ui/access.py)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not await inspector_open(scope["app"].state.services):
            raise InspectorOff()
        return await super().get_response(path, scope)


async def _to_login(request: Request, exc: LoginRequired) -> Response:
    return RedirectResponse(exc.location, status_code=303)


async def _off(request: Request, exc: Exception) -> Response:
    return HTMLResponse("<!doctype html><title>Not Found</title><p>Not Found</p>", status_code=404)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200,
           who: Viewer | None = None) -> HTMLResponse:
    page = templates.get_template(template).render(
        request=request, csrf_field=CSRF_FIELD, csrf=csrf_token(request), viewer=who, path=request.url.path,
        **context)
    response = HTMLResponse(page, status_code=status_code)
    set_cookies(request, response)
    return response


# ------------------------------------------------------------------------------------ login


@router.get("")
@router.get("/")
async def home(who: Viewer = Depends(viewer)) -> Response:
    return RedirectResponse("/ui/responses", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str = "/ui/responses") -> Response:
    services: Services = request.app.state.services
    if not await inspector_open(services):
        raise InspectorOff()
    if not await services.auth.enabled():
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request, api_key: str = Form(default=""), next: str = Form(default="/ui/responses"),
                csrf_token_field: str = Form(default="", alias=CSRF_FIELD)) -> Response:
    services: Services = request.app.state.services
    if not await inspector_open(services):
        raise InspectorOff()
    target = _safe_next(next)
    if not csrf_valid(request, csrf_token_field):
        return render(request, "login.html", {"next": target, "error": "The form expired; please try again."},
                      status_code=403)
    try:
        await services.auth.principal(f"Bearer {api_key.strip()}")
    except RiposteError as exc:
        return render(request, "login.html", {"next": target, "error": exc.message}, status_code=401)
    lifetime = services.settings.inspector.session_hours * 3600
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, sealed_session(services.keyring, api_key.strip(), lifetime), lifetime)
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token_field: str = Form(default="", alias=CSRF_FIELD)) -> Response:
    if not csrf_valid(request, csrf_token_field):
        return HTMLResponse("<!doctype html><title>Forbidden</title><p>The form expired.</p>", status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    clear_session_cookie(request, response)
    return response


def _safe_next(target: str) -> str:
    """Only a path inside the inspector: never an open redirect to another site."""
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui/responses"


# -------------------------------------------------------------------------------- responses


def _timestamp(value: str | None, param: str) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequestError(f"'{value}' is not a date and time (YYYY-MM-DDTHH:MM).", param=param) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@router.get("/responses")
async def responses_page(
    request: Request, model: str = "", status: str = "", conversation: str = "", q: str = "",
    since: str = "", until: str = "", before: int | None = Query(default=None, ge=0),
    limit: int = Query(default=50, ge=1, le=200), who: Viewer = Depends(viewer),
) -> Response:
    if status and status not in _STATUSES:
        raise InvalidRequestError(f"status must be one of {', '.join(_STATUSES)}.", param="status")
    wanted = queries.ResponseFilter(model=model or None, status=status or None,
                                    conversation=conversation.strip() or None, text=q.strip() or None,
                                    since=_timestamp(since, "since"), until=_timestamp(until, "until"),
                                    before_seq=before, limit=limit)
    engine, owner = who.services.engine, who.principal.owner
    listed, has_more = await queries.list_responses(engine, owner, wanted)
    prices = who.services.settings.inspector.prices
    rows = [views.response_row(entry.response, prices) for entry in listed]
    filters = {"model": model, "status": status, "conversation": conversation, "q": q, "since": since,
               "until": until}
    next_query = None
    if has_more and listed:
        next_query = urlencode({key: value for key, value in {**filters, "before": listed[-1].seq}.items()
                                if value not in ("", None)})
    return render(request, "responses.html", {
        "rows": rows, "filters": filters, "models": await queries.model_names(engine, owner),
        "statuses": _STATUSES, "next_query": next_query, "paged": before is not None}, who=who)


async def _timeline(who: Viewer, response_id: str) -> dict[str, Any]:
    svc = who.services
    live = running.get(response_id)
    stored = await svc.responses.get(response_id)
    if stored is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")
    # A turn of this process still running: its response object as the turn updates it.
    response = live.response if live is not None else stored.response
    steps = await svc.traces.get(response_id)
    if steps is None and live is not None:
        steps = list(live.steps)
    ancestors, children = await queries.chain_ids(svc.engine, who.principal.owner, response_id)
    shaped = views.timeline(response, stored.input_items, steps, svc.settings.inspector.prices, ancestors,
                            children, live.partial_output() if live is not None and live.partial_output else None,
                            await _named_history(svc, steps or []))
    if shaped["running"] and await svc.event_log.has_events(response_id):
        # Its events are stored (background, or stream=true with stream_resume): the page follows
        # them as they come, on whichever process runs the turn, instead of polling.
        shaped["events_url"] = f"/ui/responses/{response_id}/events"
    return shaped


async def _named_history(svc: Services, steps: list[dict[str, Any]]) -> list[Any] | None:
    """The stored messages a trace names instead of keeping them (a previous response's history)."""
    reference = history_reference(steps)
    if reference is None:
        return None
    previous = await svc.responses.get(reference)
    return previous.messages if previous is not None else None


@router.get("/responses/{response_id}")
async def response_page(request: Request, response_id: str, who: Viewer = Depends(viewer)) -> Response:
    return render(request, "timeline.html", {"t": await _timeline(who, response_id)}, who=who)


@router.get("/responses/{response_id}/live")
async def response_live(request: Request, response_id: str, who: Viewer = Depends(viewer)) -> Response:
    """The timeline's body alone, which the page swaps in every second while the turn runs."""
    return render(request, "timeline_body.html", {"t": await _timeline(who, response_id)}, who=who)


@router.get("/responses/{response_id}/events")
async def response_events(response_id: str, after: int = Query(default=-1, ge=-1),
                          who: Viewer = Depends(viewer)) -> Response:
    """The response's stored event stream, as `GET /v1/responses/{id}?stream=true` serves it."""
    svc = who.services
    if await svc.responses.get_response(response_id) is None or not await svc.event_log.has_events(response_id):
        raise NotFoundError(f"Response '{response_id}' has no stored event stream.", param="response_id")
    return event_stream_response(follow(svc.event_log, svc.responses, response_id, after,
                                        poll_seconds=svc.settings.resume_poll_seconds))


@router.get("/responses/{response_id}/calls/{call}/recording")
async def recording_page(request: Request, response_id: str, call: int, who: Viewer = Depends(viewer)) -> Response:
    """The recording an upstream call replayed or wrote, or for a replay miss the closest one, next
    to the request the call sent, with the fields that differ marked."""
    steps = await who.services.traces.get(response_id)
    if not steps or not 1 <= call <= len(steps) or steps[call - 1].get("kind") != "upstream_call":
        raise NotFoundError(f"Response '{response_id}' has no traced upstream call {call}.", param="call")
    step = steps[call - 1]
    used = step.get("recordings") or []
    name = used[0]["recording"] if used else (step.get("error") or {}).get("closest_recording")
    store = who.services.router.recordings
    recording = store.by_name(name, recording_project()) if store is not None and name else None
    if recording is None:
        raise NotFoundError(f"Upstream call {call} of '{response_id}' used no recording this server holds.",
                            param="call")
    sent = full_requests(steps, await _named_history(who.services, steps))[call - 1]
    rows = views.compared(normalize_body(sent), normalize_body(recording.body))
    return render(request, "recording.html", {
        "response_id": response_id, "call": call, "name": name, "miss": not used, "rows": rows,
        "differences": sum(1 for row in rows if row["differs"]), "test_id": recording.test_id,
        "recorded_json": views.pretty_json(recording.response_body)[:200_000]}, who=who)


# ---------------------------------------------------------------------------- conversations


@router.get("/conversations")
async def conversations_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    listed = await queries.list_conversations(who.services.engine, who.principal.owner)
    rows = [{"id": c.id, "created": views.when(c.created_at), "items": c.items, "metadata": c.metadata}
            for c in listed]
    return render(request, "conversations.html", {"rows": rows}, who=who)


@router.get("/conversations/{conversation_id}")
async def conversation_page(request: Request, conversation_id: str, who: Viewer = Depends(viewer)) -> Response:
    conversation = await who.services.conversations.get(conversation_id)
    if conversation is None:
        raise NotFoundError(f"Conversation with id '{conversation_id}' not found.", param="conversation_id")
    items = await who.services.conversations.all_items(conversation_id)
    added_by = await queries.responses_holding(who.services.engine, who.principal.owner,
                                               [str(item.get("id")) for item in items if item.get("id")])
    return render(request, "conversation.html", {
        "conversation": {"id": conversation.id, "created": views.when(conversation.created_at),
                         "metadata": conversation.metadata},
        "items": views.conversation_items(items, added_by)}, who=who)


# --------------------------------------------------------------------- files and vector stores


@router.get("/files")
async def files_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    files = await who.services.files.list(PageRequest(limit=100))
    stores, _ = await who.services.vector_stores.list_stores(PageRequest(limit=100))
    return render(request, "files.html", {
        "files": [{**record.as_object(), "created": views.when(record.created_at)} for record in files.data],
        "stores": [{**store, "created": views.when(store["created_at"])} for store in stores]}, who=who)


@router.get("/files/{file_id}")
async def file_page(request: Request, file_id: str, who: Viewer = Depends(viewer)) -> Response:
    """A file, and in each vector store holding it its ingestion and its chunks (citations land here)."""
    record = await who.services.files.get(file_id)
    svc = who.services.vector_stores
    stores = []
    for store_id in await svc.stores_holding(file_id):
        try:
            attached = await svc.retrieve_file(store_id, file_id)
            chunks = await svc.file_chunks(store_id, file_id)
        except NotFoundError:
            continue  # detached meanwhile
        stores.append({"id": store_id, "status": attached["status"], "last_error": attached.get("last_error"),
                       "chunks": [{"index": c.chunk_index, "text": c.text, "tokens": c.token_count,
                                   "anchor": views.chunk_anchor(store_id, c.chunk_index)} for c in chunks]})
    return render(request, "file.html", {
        "file": {**record.as_object(), "created": views.when(record.created_at)}, "stores": stores}, who=who)


@router.get("/vector_stores/{store_id}")
async def vector_store_page(request: Request, store_id: str, q: str = "", who: Viewer = Depends(viewer)) -> Response:
    svc = who.services.vector_stores
    store = await svc.retrieve_store(store_id)
    files, _ = await svc.list_files(store_id, PageRequest(limit=100))
    chunk_counts = await svc.chunk_counts(store_id)
    started = time.perf_counter()
    results = await compare_modes(svc, store_id, q.strip()) if q.strip() else None
    return render(request, "vector_store.html", {
        "store": store, "q": q, "results": results, "search_ms": round((time.perf_counter() - started) * 1000, 1),
        "files": [{**f, "chunks": chunk_counts.get(f["id"]), "error_json": orjson.dumps(f.get("last_error")).decode()
                   if f.get("last_error") else None} for f in files]}, who=who)
