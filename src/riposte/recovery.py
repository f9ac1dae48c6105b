"""Recovery of work a dead server process left in flight: its turns and its file ingestions.

Runs once at start-up and then after every heartbeat, so a process that dies while its
neighbours live on is recovered by them, without waiting for a restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from riposte.errors import SERVER_SHUT_DOWN
from riposte.store.instances import InstanceRegistry
from riposte.store.responses import ResponseStore
from riposte.store.vector_stores import VectorStoreRecords
from riposte.vectors.ingest import Ingestion

logger = logging.getLogger(__name__)

RESTARTED = ("server restarted: the server process running this response stopped before the response "
             "finished")
_INGEST_GIVEN_UP = {"code": "server_error",
                    "message": "server restarted: ingestion of this file was interrupted by server crashes too "
                               "many times; attach the file again."}


@dataclass(frozen=True)
class Recovered:
    failed_responses: list[str] = field(default_factory=list)
    resumed_files: list[tuple[str, str]] = field(default_factory=list)
    failed_files: list[tuple[str, str]] = field(default_factory=list)


class Recovery:
    def __init__(self, registry: InstanceRegistry, responses: ResponseStore, records: VectorStoreRecords,
                 ingestion: Ingestion, heartbeat_seconds: float, stale_seconds: float,
                 ingest_max_attempts: int) -> None:
        self._registry = registry
        self._responses = responses
        self._records = records
        self._ingestion = ingestion
        self._heartbeat_seconds = heartbeat_seconds
        self._stale_seconds = stale_seconds
        self._ingest_max_attempts = ingest_max_attempts
        self._task: asyncio.Task[None] | None = None

    async def sweep(self, everything: bool = True) -> Recovered:
        """Recover the work of dead instances. `everything` (at start-up) also takes work whose owner
        is not registered at all, or that an older version left without an owner."""
        dead = [instance.id for instance in await self._registry.dead(self._stale_seconds)]
        if not dead and not everything:
            return Recovered()
        failed = await self._responses.fail_in_progress(dead, RESTARTED)
        files = await self._records.take_over_orphans(dead, self._ingest_max_attempts, _INGEST_GIVEN_UP)
        await self._ingestion.resume(files.resumed)
        if dead:
            await self._registry.forget(dead)
        recovered = Recovered(failed_responses=failed,
                              resumed_files=[(f.vector_store_id, f.file_id) for f in files.resumed],
                              failed_files=[(f.vector_store_id, f.file_id) for f in files.failed])
        if failed or files.resumed or files.failed:
            logger.warning("recovered from %d dead server instance(s): %d response(s) failed, %d file ingestion(s) "
                           "resumed, %d failed", len(dead), len(failed), len(files.resumed), len(files.failed))
        return recovered

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat_forever(), name="riposte heartbeat and recovery")

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await self._registry.beat()
                await self.sweep(everything=False)
            except Exception:  # the database may be briefly unreachable: try again at the next beat
                logger.exception("heartbeat or recovery sweep failed")

    async def aclose(self) -> None:
        """Stop beating; fail what this instance still has in flight; leave the registry."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        me = self._registry.me.id
        await self._responses.fail_in_progress([me], SERVER_SHUT_DOWN)
        await self._registry.forget([me])
