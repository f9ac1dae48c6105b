"""Live server processes, so that work left behind by a dead one can be told from work in flight.

Every process registers a row with a fresh id and refreshes its heartbeat every few seconds.
Another instance is dead when
- it ran on this same host (hostname, boot id and pid namespace all equal) and its process is
  gone, or its pid now belongs to a process that started at another time: known at once, which
  makes a restart on one machine recover immediately; or
- its heartbeat is older than the staleness limit: the rule for other hosts, and the fallback.
A start-up generation number would not do: with several processes on one database, a process
that restarts would fail the turns of its live neighbours.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema

_TABLE = schema.server_instances


@dataclass(frozen=True)
class Instance:
    id: str
    host: str
    pid: int
    process_start: int | None
    heartbeat_at: float


def this_process() -> Instance:
    return Instance(id=f"inst_{uuid.uuid4().hex}", host=host_identity(), pid=os.getpid(),
                    process_start=process_start_ticks(os.getpid()), heartbeat_at=time.time())


@cache
def host_identity() -> str:
    """What processes that can see each other's pids share: the hostname, the boot and the pid namespace."""
    boot = _read("/proc/sys/kernel/random/boot_id").strip()
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{boot}|{namespace}"[:300]


def process_start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None when gone, a zombie, or not Linux."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the command name in parentheses may hold spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_dead(other: Instance, me: Instance, now: float, stale_after: float) -> bool:
    if other.id == me.id:
        return False
    if other.host == me.host and other.process_start is not None and me.process_start is not None:
        # Two servers in one process (tests do this) share pid and start time, and are both alive.
        return process_start_ticks(other.pid) != other.process_start
    return now - other.heartbeat_at > stale_after


class InstanceRegistry:
    def __init__(self, engine: AsyncEngine, me: Instance) -> None:
        self._engine = engine
        self.me = me

    async def beat(self) -> None:
        """Refresh this instance's heartbeat; register it again if another instance retired it
        (because the database was unreachable for longer than the staleness limit)."""
        now = time.time()
        async with self._engine.begin() as connection:
            changed = await connection.execute(update(_TABLE).where(_TABLE.c.id == self.me.id)
                                               .values(heartbeat_at=now))
            if not changed.rowcount:
                await connection.execute(_TABLE.insert().values(
                    id=self.me.id, host=self.me.host, pid=self.me.pid, process_start=self.me.process_start,
                    started_at=now, heartbeat_at=now))

    async def dead(self, stale_after: float) -> list[Instance]:
        columns = (_TABLE.c.id, _TABLE.c.host, _TABLE.c.pid, _TABLE.c.process_start, _TABLE.c.heartbeat_at)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(*columns))).all()
        now = time.time()
        others = [Instance(id=r[0], host=r[1], pid=int(r[2]), process_start=r[3], heartbeat_at=float(r[4]))
                  for r in rows]
        return [other for other in others if is_dead(other, self.me, now, stale_after)]

    async def forget(self, instance_ids: list[str]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(_TABLE).where(_TABLE.c.id.in_(instance_ids)))


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
