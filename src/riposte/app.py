"""The ASGI application: routers, error mapping, middleware, and the services' lifetime."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from riposte import __version__
from riposte.api import conversations, files, models, passthrough, responses, vector_stores
from riposte.api.errors import install_error_handlers
from riposte.api.middleware import BodySizeLimit, ReplayScope
from riposte.config import Settings, load_settings
from riposte.services import Services

# Room for the multipart boundaries and form fields around an uploaded file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    resolved = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        app.state.services = await Services.start(resolved)
        try:
            yield
        finally:
            await app.state.services.close()

    app = FastAPI(title="Riposte", version=__version__, lifespan=lifespan)
    for router in (responses.router, passthrough.router, models.router, conversations.router, files.router,
                   vector_stores.router):
        app.include_router(router, prefix="/v1")
    app.add_api_route("/health", models.health, methods=["GET"])
    install_error_handlers(app)
    app.add_middleware(ReplayScope)
    # Uploads may exceed the JSON limit; the file service enforces max_file_bytes exactly.
    upload_limit = max(resolved.max_request_bytes, resolved.max_file_bytes + MULTIPART_OVERHEAD_BYTES)
    app.add_middleware(BodySizeLimit, max_bytes=resolved.max_request_bytes, path_limits={"/v1/files": upload_limit})
    return app


def app_from_environment() -> FastAPI:
    """Entry point for `uvicorn --factory` and for worker processes."""
    return create_app(load_settings())
