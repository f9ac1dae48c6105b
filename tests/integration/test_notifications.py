"""PostgreSQL wake-ups: what a transaction notifies reaches a `Listener`, one per payload, in order."""

from __future__ import annotations

import asyncio

from riposte.store.database import create_engine
from riposte.store.group_commit import GroupCommit
from riposte.store.notifications import EVENTS, JOBS, Listener, notify, notify_each


async def test_each_payload_and_a_single_notify_reach_the_listener(postgres_database_url: str) -> None:
    engine = create_engine(postgres_database_url)
    heard: list[tuple[str, str]] = []
    listener = Listener(engine)
    listener.on(EVENTS, lambda payload: heard.append((EVENTS, payload)))
    listener.on(JOBS, lambda payload: heard.append((JOBS, payload)))
    listener.start()
    try:
        for _ in range(100):  # the LISTEN connection comes up in the background
            async with engine.begin() as connection:
                await notify(connection, JOBS, "ping")
            await asyncio.sleep(0.05)
            if heard:
                break
        heard.clear()
        writes: GroupCommit[list[str], None] = GroupCommit(
            engine, lambda statements, batch: [notify_each(statements, EVENTS, payloads) for payloads in batch])
        await asyncio.gather(writes.write(["resp_a", "resp_b"]), writes.write([]), writes.write(["resp_c"]))
        for _ in range(100):
            if len(heard) == 3:
                break
            await asyncio.sleep(0.02)
        assert heard == [(EVENTS, "resp_a"), (EVENTS, "resp_b"), (EVENTS, "resp_c")]
    finally:
        await listener.aclose()
        await engine.dispose()
