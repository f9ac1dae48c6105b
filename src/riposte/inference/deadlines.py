"""Deadlines on an upstream call: connect, first byte, idle between reads, and the whole call.

A streamed body is watched by one timer per stream that re-arms itself only when it fires, so a
socket read costs a clock read and two attribute stores, never a timer of its own (aiohttp's own
per-read timeout cancels and schedules a timer handle on every read). When a deadline passes, the
watchdog puts an `UpstreamTimeoutError` into the body's reader: the pending read raises it, or the
next one does if the reader is busy handing chunks to a slow client.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol

from riposte.config import ProviderConfig
from riposte.errors import UpstreamError

# `BodyWatchdog.waiting_since` while the reader is not waiting for the upstream.
NOT_WAITING = math.inf


class UpstreamTimeoutError(UpstreamError):
    default_code = "upstream_timeout"


@dataclass(frozen=True)
class Deadlines:
    connect: float
    first_byte: float
    idle: float
    total: float

    @classmethod
    def of(cls, provider: ProviderConfig) -> Deadlines:
        return cls(connect=provider.connect_timeout_seconds, first_byte=provider.first_byte_timeout_seconds,
                   idle=provider.idle_timeout_seconds, total=provider.total_timeout_seconds)

    def before_first_byte(self, started: float) -> tuple[float, str]:
        """When the wait for the first byte must end, and which deadline that is."""
        if self.first_byte < self.total:
            return started + self.first_byte, "first-byte"
        return started + self.total, "total"


def deadline_error(name: str, seconds: float) -> UpstreamTimeoutError:
    what = {
        "connect": "connecting to the upstream",
        "first-byte": "waiting for the first byte of the answer",
        "idle": "waiting for the next piece of the answer",
        "total": "the whole upstream call",
    }[name]
    return UpstreamTimeoutError(f"upstream {name} deadline of {seconds:g} s passed ({what})")


class _Reader(Protocol):
    def set_exception(self, exc: BaseException) -> None: ...


class BodyWatchdog:
    """Enforces the first-byte, idle and total deadlines on one streamed body.

    The reader sets `waiting_since` to the loop time before each read and to `NOT_WAITING` after
    it, so time spent handing chunks downstream never counts as upstream silence."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reader: _Reader, deadlines: Deadlines,
                 started: float) -> None:
        self._loop = loop
        self._reader = reader
        self._deadlines = deadlines
        self._total_at = started + deadlines.total
        self._limit = deadlines.first_byte
        self._phase = "first-byte"
        self.waiting_since = started
        self._handle = loop.call_at(min(started + self._limit, self._total_at), self._check)

    def first_byte_arrived(self) -> None:
        """From now on the idle deadline applies; re-armed once, since it is usually the shorter."""
        self._limit = self._deadlines.idle
        self._phase = "idle"
        self.waiting_since = NOT_WAITING  # the reader now hands the first chunks on
        self._handle.cancel()
        self._arm(self._loop.time())

    def cancel(self) -> None:
        self._handle.cancel()

    def _arm(self, now: float) -> None:
        since = self.waiting_since if self.waiting_since != NOT_WAITING else now
        self._handle = self._loop.call_at(min(since + self._limit, self._total_at), self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self._total_at:
            self._reader.set_exception(deadline_error("total", self._deadlines.total))
        elif now - self.waiting_since >= self._limit:
            self._reader.set_exception(deadline_error(self._phase, self._limit))
        else:
            self._arm(now)
