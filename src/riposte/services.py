"""The long-lived objects one server process shares across requests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.auth.authenticator import Authenticator
from riposte.auth.posture import check_posture
from riposte.auth.principal import current_principal
from riposte.background import BackgroundRunner, RunnerSettings
from riposte.config import InferenceMode, Settings
from riposte.engine.turn_tools import ToolFactory
from riposte.files.service import FileService
from riposte.guardrails.guards import GuardRegistry
from riposte.inference.recording_store import RecordingStore
from riposte.inference.router import ModelRouter
from riposte.recovery import Recovery
from riposte.redact import register_secret
from riposte.sealing import Keyring, load_keyring
from riposte.store.api_keys import ApiKeyStore
from riposte.store.background_jobs import JobQueue
from riposte.store.blobs import BlobStore
from riposte.store.conversations import ConversationStore
from riposte.store.database import create_engine, ensure_database, migrate, redact_url
from riposte.store.event_log import EventLog
from riposte.store.files import FileStore
from riposte.store.instances import InstanceRegistry, this_process
from riposte.store.loop_sqlite import LoopConnection
from riposte.store.notifications import CANCEL, EVENTS, JOBS, Listener
from riposte.store.ownership import Owner
from riposte.store.permissions import secure_data_dir, secure_database_files
from riposte.store.responses import ResponseStore
from riposte.store.traces import TraceStore
from riposte.store.vector_stores import VectorStoreRecords
from riposte.tools.file_search_tool import file_search_factory
from riposte.tools.mcp_tool import mcp_factory
from riposte.tools.web_search import PREVIEW_TYPES, WEB_SEARCH_TYPES
from riposte.tools.web_search_tool import web_search_factory
from riposte.vectors.embeddings import EmbeddingModels
from riposte.vectors.extraction_worker import ExtractionLimits
from riposte.vectors.factory import open_index
from riposte.vectors.ingest import Ingestion
from riposte.vectors.service import VectorStoreService
from riposte.websearch.service import WebSearchService

logger = logging.getLogger(__name__)
# Projects whose views are kept at once; past this the cache starts over.
_MAX_VIEWS = 1024


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    router: ModelRouter
    responses: ResponseStore
    conversations: ConversationStore
    files: FileService
    vector_stores: VectorStoreService
    keyring: Keyring
    web_search: WebSearchService
    recovery: Recovery
    auth: Authenticator
    # Turn traces for the web inspector (engine/turn_trace.py).
    traces: TraceStore
    # Stored stream events (resume) and the background runner.
    event_log: EventLog
    background: BackgroundRunner
    # PostgreSQL LISTEN for the wake-ups of other replicas (store/notifications.py).
    listener: Listener
    # SQLite: the connection that writes small rows on the loop (store/loop_sqlite.py).
    loop_writes: LoopConnection | None = None
    # Server-side tools by Responses tool type, e.g. "file_search"; function tools need none.
    tool_factories: dict[str, ToolFactory] = field(default_factory=dict)
    # The configured guardrails by name, with the server default (riposte/guardrails/).
    guardrails: GuardRegistry = field(default_factory=GuardRegistry.empty)
    # Views of these services for one project each (owned_by), made once per project.
    _views: dict[Owner, Services] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        if await ensure_database(settings.resolved_database_url):
            logger.info("created the PostgreSQL database named in %s", redact_url(settings.resolved_database_url))
        for provider in settings.providers:
            register_secret(provider.resolved_api_key())
        secure_data_dir(settings.data_dir)
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        secure_database_files(settings.resolved_database_url)
        auth = Authenticator(ApiKeyStore(engine), settings.auth)
        check_posture(settings.host, await auth.enabled(), settings.insecure_no_auth)
        recordings = None
        if settings.inference_mode is not InferenceMode.LIVE:
            recordings = RecordingStore(settings.resolved_recordings_dir)
        router = ModelRouter(settings, recordings)
        registry = InstanceRegistry(engine, this_process())
        await registry.beat()
        loop_writes = LoopConnection.for_engine(engine)
        responses = ResponseStore(engine, owner=registry.me.id, on_loop=loop_writes)
        records = VectorStoreRecords(engine, owner=registry.me.id)
        files = await _file_services(settings, engine, router, records)
        recovery = Recovery(registry, responses, records, files["vector_stores"].ingestion,
                            settings.instance_heartbeat_seconds, settings.instance_stale_seconds,
                            settings.ingest_max_attempts)
        event_log = EventLog(engine, flush_seconds=settings.event_flush_seconds)
        runner = BackgroundRunner(JobQueue(engine, registry.me.id), event_log, RunnerSettings(
            workers=settings.background_workers, poll_seconds=settings.background_poll_seconds,
            lease_seconds=settings.background_lease_seconds, max_attempts=settings.background_max_attempts))
        started = cls(settings=settings, engine=engine, router=router, responses=responses,
                      conversations=ConversationStore(engine), recovery=recovery, event_log=event_log,
                      background=runner, listener=Listener(engine), loop_writes=loop_writes,
                      keyring=load_keyring(settings.sealing_keys, settings.data_dir), auth=auth,
                      traces=TraceStore(engine), **files)
        started.tool_factories["file_search"] = file_search_factory(started.vector_stores)
        for tool_type in (*WEB_SEARCH_TYPES, *PREVIEW_TYPES):
            started.tool_factories[tool_type] = web_search_factory(started.web_search)
        started.tool_factories["mcp"] = mcp_factory(settings.outbound, settings.mcp_timeout_seconds)
        started.guardrails = GuardRegistry.from_settings(settings.guardrails, router)
        await recovery.sweep()
        recovery.start()
        event_log.start()
        started.background.start(started.owned_by)
        started.listener.on(EVENTS, event_log.wake)
        started.listener.on(JOBS, lambda _payload: runner.wake())
        started.listener.on(CANCEL, runner.cancel_if_running)
        started.listener.start()
        return started

    def owned_by(self, owner: Owner) -> Services:
        """These services as one request's caller sees them: every store limited to its project."""
        view = self._views.get(owner)
        if view is None:
            vector_stores = self.vector_stores.owned_by(owner)
            view = replace(
                self, responses=self.responses.owned_by(owner), conversations=self.conversations.owned_by(owner),
                files=self.files.owned_by(owner), vector_stores=vector_stores, traces=self.traces.owned_by(owner),
                tool_factories={**self.tool_factories, "file_search": file_search_factory(vector_stores)},
            )
            if len(self._views) >= _MAX_VIEWS:
                self._views.clear()
            self._views[owner] = view
        return view

    async def close(self) -> None:
        await self.listener.aclose()
        await self.background.aclose()
        await self.event_log.aclose()
        await self.web_search.aclose()
        await self.vector_stores.aclose()
        await self.recovery.aclose()
        await self.router.aclose()
        if self.loop_writes is not None:
            await self.loop_writes.aclose()
        await self.engine.dispose()


async def _file_services(settings: Settings, engine: AsyncEngine, router: ModelRouter,
                         records: VectorStoreRecords) -> dict[str, Any]:
    files = FileService(FileStore(engine), BlobStore(settings.data_dir.resolve() / "files"), settings.max_file_bytes)
    await files.purge_expired()
    index = await open_index(settings, engine)
    models = EmbeddingModels(router, settings.default_embedding_model)
    limits = ExtractionLimits(settings.extraction_timeout_seconds, settings.extraction_memory_mb)
    ingestion = Ingestion(files, records, index, models, settings.ingest_concurrency, limits)
    vector_stores = VectorStoreService(records, files, index, models, ingestion)
    web_search = WebSearchService(settings.web_search, settings.inference_mode, router.recordings, vector_stores,
                                  check_url=partial(settings.outbound.check, param="web_search"))
    return {"files": files, "vector_stores": vector_stores, "web_search": web_search}


async def services(request: Request) -> Services:
    """The services as the request's authenticated caller sees them (api/security.py sets it)."""
    # async: FastAPI runs a plain-def dependency in a worker thread, one thread hop per request.
    found: Services = request.app.state.services
    return found.owned_by(current_principal.get().owner)
