"""API key rows: created and revoked by the CLI, read by the authenticator on every request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema

_KEYS = schema.api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    project: str
    name: str
    admin: bool
    salt: str
    hash: str
    created_at: float
    revoked_at: float | None
    limits: dict[str, Any]

    def listing(self) -> dict[str, Any]:
        """What `riposte keys list` shows: never the salt or hash."""
        return {"key_id": self.key_id, "project": self.project, "name": self.name, "admin": self.admin,
                "created_at": int(self.created_at), "revoked": self.revoked_at is not None, "limits": self.limits}


_COLUMNS = (_KEYS.c.key_id, _KEYS.c.project, _KEYS.c.name, _KEYS.c.admin, _KEYS.c.salt, _KEYS.c.hash,
            _KEYS.c.created_at, _KEYS.c.revoked_at, _KEYS.c.limits)


class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: ApiKeyRecord) -> None:
        async with self._engine.begin() as db:
            await db.execute(_KEYS.insert().values(
                key_id=record.key_id, project=record.project, name=record.name, admin=record.admin,
                salt=record.salt, hash=record.hash, created_at=record.created_at, revoked_at=record.revoked_at,
                limits=orjson.dumps(record.limits).decode(),
            ))

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self._engine.connect() as db:
            row = (await db.execute(select(*_COLUMNS).where(_KEYS.c.key_id == key_id))).first()
        return _record(row) if row is not None else None

    async def all(self) -> list[ApiKeyRecord]:
        async with self._engine.connect() as db:
            rows = (await db.execute(select(*_COLUMNS).order_by(_KEYS.c.created_at))).all()
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        statement = (update(_KEYS).where(_KEYS.c.key_id == key_id, _KEYS.c.revoked_at.is_(None))
                     .values(revoked_at=time.time()))
        async with self._engine.begin() as db:
            return bool((await db.execute(statement)).rowcount)

    async def any_created(self) -> bool:
        """Whether a key was ever created. Revoking every key does not switch authentication off."""
        async with self._engine.connect() as db:
            return bool((await db.execute(select(func.count()).select_from(_KEYS))).scalar())


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(key_id=row[0], project=row[1], name=row[2], admin=bool(row[3]), salt=row[4], hash=row[5],
                        created_at=float(row[6]), revoked_at=row[7], limits=orjson.loads(row[8]))
