"""The ASGI application: routers, error mapping, middleware, and the services' lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response

from riposte import __version__
from riposte.api import conversations, files, models, passthrough, readiness, responses, vector_stores, websocket
from riposte.api.errors import ErrorBoundary, install_error_handlers
from riposte.api.middleware import BodySizeLimit, PrintableUrl, ReplayScope, RequestLog
from riposte.api.openapi import install_openapi, returns
from riposte.api.readiness import on_termination
from riposte.api.security import install_security
from riposte.config import InferenceMode, Settings, load_settings
from riposte.garbage_collection import collecting_while_serving, freeze_startup_heap
from riposte.observability.logs import configure_logging
from riposte.observability.metrics import exposition
from riposte.observability.startup import check_providers, warm_up_embeddings
from riposte.observability.tracing import configure_tracing, shutdown_tracing
from riposte.services import Services
from riposte.ui.retention import expire_traces
from riposte.ui.routes import install_inspector

# Room for the multipart boundaries and form fields around an uploaded file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# How long a thread that wants the GIL waits before the running one must hand it over (Python's
# default is 5 ms). The event loop holds the GIL while it streams; the database driver's thread
# needs it back after every SQLite step, so under load each statement waited several 5 ms turns
# (a group commit of 40 rows took 200 ms). A shorter turn costs the loop nothing when no other
# thread is waiting.
GIL_SWITCH_INTERVAL_S = 0.0005


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        app.state.services = await Services.start(resolved)
        freeze_startup_heap()
        # SIGTERM: stop taking background jobs and report not ready at once; uvicorn then lets open
        # requests finish (shutdown_grace_seconds) before the services close and hand jobs back.
        on_termination(app.state.services.background.drain)
        background = [asyncio.create_task(warm_up_embeddings(app.state.services.vector_stores)),
                      asyncio.create_task(expire_traces(app.state.services.traces, resolved.inspector))]
        if resolved.inference_mode is not InferenceMode.REPLAY:
            background.append(asyncio.create_task(check_providers(app.state.services.router)))
        try:
            async with collecting_while_serving():
                yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.services.close()

    app = FastAPI(title="Riposte", version=__version__, lifespan=lifespan)
    for router in (responses.router, websocket.router, passthrough.router, models.router, conversations.router,
                   files.router, vector_stores.router):
        app.include_router(router, prefix="/v1")
    app.add_api_route("/health", models.health, methods=["GET"], responses=returns(models.Health))
    app.add_api_route("/ready", readiness.ready, methods=["GET"], responses=returns(readiness.Readiness))
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    install_inspector(app)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(ReplayScope)
    app.add_middleware(PrintableUrl)
    # Uploads may exceed the JSON limit; the file service enforces max_file_bytes exactly.
    upload_limit = max(resolved.max_request_bytes, resolved.max_file_bytes + MULTIPART_OVERHEAD_BYTES)
    app.add_middleware(BodySizeLimit, max_bytes=resolved.max_request_bytes, path_limits={"/v1/files": upload_limit})
    install_security(app, resolved.host, resolved.auth)
    # Inside the request log, so that it logs the 500 an unexpected error becomes.
    app.add_middleware(ErrorBoundary)
    app.add_middleware(RequestLog)  # outermost: it sees every status, the size limit's 413 included
    return app


async def metrics_endpoint() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory` and for worker processes: the process-wide logging and
    tracing set-up happens here, not in `create_app`, which tests call many times in one process."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    if configure_tracing(settings.otlp_traces_endpoint):
        import atexit

        atexit.register(shutdown_tracing)
    return create_app(settings)
