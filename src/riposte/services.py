"""The long-lived objects one server process shares across requests."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.config import InferenceMode, Settings
from riposte.inference.recording_store import RecordingStore
from riposte.inference.router import ModelRouter
from riposte.store.conversations import ConversationStore
from riposte.store.database import create_engine, migrate
from riposte.store.responses import ResponseStore


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    router: ModelRouter
    responses: ResponseStore
    conversations: ConversationStore

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        engine = create_engine(settings.resolved_database_url)
        await migrate(engine)
        recordings = None
        if settings.inference_mode is not InferenceMode.LIVE:
            recordings = RecordingStore(settings.resolved_recordings_dir)
        return cls(
            settings=settings,
            engine=engine,
            router=ModelRouter(settings, recordings),
            responses=ResponseStore(engine),
            conversations=ConversationStore(engine),
        )

    async def close(self) -> None:
        await self.router.aclose()
        await self.engine.dispose()


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
