"""Which recordings the record/replay layer used for the upstream call in progress, for the
inspector's trace (engine/turn_trace.py). Set only around a traced call; untraced calls pay one
ContextVar read."""

from __future__ import annotations

from contextvars import ContextVar

# Each entry: {"recording": <file name>, "use": "replayed" | "recorded"}.
recordings_used: ContextVar[list[dict[str, str]] | None] = ContextVar("riposte_recordings_used", default=None)


def note_recording(path: str, use: str) -> None:
    used = recordings_used.get()
    if used is not None:
        used.append({"recording": path.rsplit("/", 1)[-1], "use": use})
