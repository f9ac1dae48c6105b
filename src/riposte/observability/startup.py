"""What the server says when it starts: where it listens, what it talks to, where it keeps data,
and which providers it cannot reach."""

from __future__ import annotations

import asyncio
import logging
import time

from riposte import __version__
from riposte.config import InferenceMode, Settings
from riposte.garbage_collection import freeze_startup_heap
from riposte.inference.router import ModelRouter
from riposte.store.database import redact_url
from riposte.vectors.service import VectorStoreService
from riposte.websearch.service import describe as describe_web_search

logger = logging.getLogger("riposte.startup")


def summary_lines(settings: Settings) -> list[str]:
    lines = [
        f"Riposte {__version__}: serving the Responses API at http://{settings.host}:{settings.port}/v1 "
        f"({settings.workers} worker{'s' if settings.workers != 1 else ''})",
        f"inference mode: {settings.inference_mode.value}"
        + (f" (recordings in {settings.resolved_recordings_dir.resolve()})"
           if settings.inference_mode is not InferenceMode.LIVE else ""),
    ]
    for provider in settings.providers:
        key = "API key set" if provider.resolved_api_key() != "none" else "no API key"
        default = " (default)" if provider.name == settings.default_provider else ""
        lines.append(f"provider {provider.name}{default}: {provider.base_url} ({key})")
    lines += [
        f"database: {redact_url(settings.resolved_database_url)}",
        f"data directory: {settings.data_dir.resolve()}",
        f"vector index: {settings.vector_index}",
        describe_web_search(settings.web_search),
        f"logs: {settings.log_format} at level {settings.log_level}; metrics at "
        f"http://{settings.host}:{settings.port}/metrics; traces "
        + (f"to {settings.otlp_traces_endpoint}" if settings.otlp_traces_endpoint else "off"),
    ]
    return lines


def log_summary(settings: Settings) -> None:
    for line in summary_lines(settings):
        logger.info(line)
    if settings.inference_mode is not InferenceMode.REPLAY:
        for provider in settings.providers:
            if provider.resolved_api_key() == "none" and "api.openai.com" in provider.base_url:
                logger.warning("provider %s points at OpenAI but has no API key: set OPENAI_API_KEY (or the "
                               "provider's api_key_env) or every call will fail with 401", provider.name)


async def check_providers(router: ModelRouter) -> None:
    """List each provider's models once, in the background, and say which cannot be reached."""
    for name, error in (await router.unreachable_providers()).items():
        logger.warning("provider %s is not reachable: %s", name, error)


async def warm_up_embeddings(vector_stores: VectorStoreService) -> None:
    started = time.perf_counter()
    try:
        if await vector_stores.warm_up():
            logger.info("local embedding model loaded in %.1f s", time.perf_counter() - started)
            freeze_startup_heap()  # the model's millions of objects too
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a failed warm-up only means the first search loads it
        logger.warning("embedding model warm-up failed: %s", exc)
