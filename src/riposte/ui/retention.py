"""Turn traces are dropped once older than `inspector.trace_retention_days`: at start-up, then hourly."""

from __future__ import annotations

import asyncio
import logging

from riposte.store.traces import TraceStore
from riposte.ui.settings import InspectorSettings

logger = logging.getLogger(__name__)
_EVERY_SECONDS = 3600.0


async def expire_traces(traces: TraceStore, settings: InspectorSettings, every: float = _EVERY_SECONDS) -> None:
    # 0 (capture off) keeps none: traces captured before are dropped too.
    days = settings.trace_retention_days
    while True:
        try:
            dropped = await traces.purge_older_than(days * 86400)
            if dropped:
                logger.info("dropped %d turn traces older than %g days", dropped, days)
        except Exception:  # the database may be briefly away; try again next time
            logger.exception("could not drop expired turn traces")
        await asyncio.sleep(every)
