"""The load generator: `concurrency` keep-alive connections, each sending one unit of load after
another until the measuring window closes, while the server's CPU and memory are read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, replace
from enum import Enum

import orjson

from bench import procstat
from bench.bodies import Api, first_body, json_reply_ok, tool_call_in_stream, tool_result_body
from bench.client import Connection, Exchange, Window, http_request
from bench.stats import Sample

REQUEST_TIMEOUT_S = 180.0
RSS_SAMPLE_EVERY_S = 0.25


class Mode(str, Enum):
    STREAM = "stream"
    JSON = "non-stream"
    TOOL = "tool round trip"


@dataclass(frozen=True)
class Target:
    """A server to load: `name` is the short key, `label` what the tables show."""

    name: str
    label: str
    host: str
    port: int
    api: Api
    model_prefix: str = ""
    pid: int | None = None


@dataclass(frozen=True)
class Scenario:
    mode: Mode
    concurrency: int
    delay_ms: float = 0.0
    tokens: int = 256
    store: bool = True

    def model(self, prefix: str) -> str:
        return f"{prefix}bench-t{self.tokens}-d{self.delay_ms:g}"


@dataclass(frozen=True)
class CellRun:
    samples: list[Sample]
    window_s: float
    ramp_s: float
    span_s: float
    cpu_s: float | None
    rss_start: int | None
    rss_peak: int | None
    # CPU that neither the server, the load generator nor the fake upstream used: other programs on
    # the machine, which make a cell's numbers worse than the software alone would; and steal, time
    # the hypervisor gave to other machines. Both as a share of all cores over the cell.
    others_cpu_share: float
    steal_share: float


class _Plan:
    """How one unit of load is sent and judged, for one target and scenario."""

    def __init__(self, target: Target, scenario: Scenario) -> None:
        self.target = target
        self.scenario = scenario
        self.model = scenario.model(target.model_prefix)
        body = first_body(target.api, self.model, stream=scenario.mode is not Mode.JSON, store=scenario.store,
                          tools=scenario.mode is Mode.TOOL)
        self._first = self._request(body)

    def _request(self, body: dict[str, object]) -> bytes:
        stream = bool(body.get("stream"))
        return http_request("POST", self.target.host, self.target.port, self.target.api.path,
                            orjson.dumps(body), stream=stream)

    async def run(self, connection: Connection, window: Window) -> Sample:
        if self.scenario.mode is Mode.JSON:
            return await self._json(connection, window)
        if self.scenario.mode is Mode.TOOL:
            return await self._tool_round_trip(connection, window)
        exchange = await connection.send(self._first, self.target.api.markers, window=window,
                                         timeout=REQUEST_TIMEOUT_S)
        return self._stream_sample(exchange, exchange.started)

    def _stream_sample(self, exchange: Exchange, started: float) -> Sample:
        error = _stream_error(exchange, self.scenario.tokens)
        first = exchange.first_delta_at
        return Sample(ok=error is None, started=started, finished=exchange.finished or time.perf_counter(),
                      ttft=None if first is None else first - started, deltas=exchange.deltas,
                      deltas_in_window=exchange.deltas_in_window, error=error)

    async def _json(self, connection: Connection, window: Window) -> Sample:
        exchange = await connection.send(self._first, None, timeout=REQUEST_TIMEOUT_S)
        finished = exchange.finished or time.perf_counter()
        ok = exchange.error is None and exchange.status == 200 and json_reply_ok(self.target.api, bytes(exchange.body))
        tokens = self.scenario.tokens if ok else 0
        return Sample(ok=ok, started=exchange.started, finished=finished, ttft=None, deltas=tokens,
                      deltas_in_window=tokens if window.holds(finished) else 0,
                      error=None if ok else exchange.error or f"HTTP {exchange.status}: {bytes(exchange.body)[:120]!r}")

    async def _tool_round_trip(self, connection: Connection, window: Window) -> Sample:
        api = self.target.api
        first = await connection.send(self._first, api.markers, keep_body=True, timeout=REQUEST_TIMEOUT_S)
        call = tool_call_in_stream(api, bytes(first.body)) if _stream_error(first, 0) is None else None
        if call is None or connection.closed:
            error = _stream_error(first, 0) or "no function call in the first leg"
            return Sample(ok=False, started=first.started, finished=time.perf_counter(), ttft=None, deltas=0,
                          deltas_in_window=0, error=error)
        second = await connection.send(self._request(tool_result_body(api, self.model, call)), api.markers,
                                       window=window, timeout=REQUEST_TIMEOUT_S)
        return self._stream_sample(second, first.started)


def _stream_error(exchange: Exchange, tokens: int) -> str | None:
    if exchange.error is not None:
        return exchange.error
    if exchange.status != 200:
        return f"HTTP {exchange.status}"
    if not exchange.terminal_seen:
        return "no terminal event"
    if exchange.deltas != tokens:
        return f"{exchange.deltas} of {tokens} deltas"
    return None


async def _worker(plan: _Plan, connection: Connection, window: Window, first_at: float) -> list[Sample]:
    samples: list[Sample] = []
    await asyncio.sleep(max(0.0, first_at - time.perf_counter()))
    while not samples or time.perf_counter() < window.end:
        if connection.closed:
            try:
                connection = await Connection.open(plan.target.host, plan.target.port)
            except OSError as exc:
                now = time.perf_counter()
                samples.append(Sample(False, now, now, None, 0, 0, f"connect: {exc}"))
                await asyncio.sleep(0.05)
                continue
        sample = await plan.run(connection, window)
        samples.append(replace(sample, during_ramp=True) if sample.started < window.start else sample)
    connection.close()
    return samples


async def _peak_rss(pids: tuple[int, ...], peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], procstat.rss_bytes(pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_SAMPLE_EVERY_S)


async def run_cell(target: Target, scenario: Scenario, seconds: float, bystanders: tuple[int, ...] = (),
                   ramp_s: float = 0.0) -> CellRun:
    """`bystanders`: our own helper processes (the fake upstream), not counted as outside noise.

    With `ramp_s`, the connections send their first requests evenly spread over that time instead
    of all at once, and the measuring window of `seconds` opens only after it: the steady state of
    `concurrency` users who did not all press enter in the same millisecond. Without it every
    connection starts at once, and a cell of slow responses measures little but that start."""
    plan = _Plan(target, scenario)
    connections = await asyncio.gather(
        *(Connection.open(target.host, target.port) for _ in range(scenario.concurrency)))
    machine_before, ours_before = procstat.MachineTimes.now(), _our_cpu_s(target, bystanders)
    before = procstat.usage(target.pid) if target.pid else None
    peak, stop = [before.rss_bytes if before else 0], asyncio.Event()
    sampler = asyncio.create_task(_peak_rss(before.pids, peak, stop)) if before else None
    started = time.perf_counter()
    window = Window(started + ramp_s, started + ramp_s + seconds)
    stagger = ramp_s / scenario.concurrency
    per_worker = await asyncio.gather(*(_worker(plan, c, window, started + i * stagger)
                                        for i, c in enumerate(connections)))
    span = time.perf_counter() - started
    stop.set()
    if sampler is not None:
        await sampler
    after = procstat.usage(target.pid) if target.pid else None
    machine_after, ours_after = procstat.MachineTimes.now(), _our_cpu_s(target, bystanders)
    capacity = span * (os.cpu_count() or 1)
    others = (machine_after.busy_s - machine_before.busy_s) - (ours_after - ours_before)
    return CellRun(
        samples=[s for samples in per_worker for s in samples],
        window_s=seconds,
        ramp_s=ramp_s,
        span_s=span,
        # A server that died during the cell took its CPU figures with it.
        cpu_s=after.cpu_s - before.cpu_s if before and after and after.cpu_s >= before.cpu_s else None,
        rss_start=before.rss_bytes if before else None,
        rss_peak=max(peak[0], after.rss_bytes) if after else None,
        others_cpu_share=max(others, 0.0) / capacity,
        steal_share=(machine_after.steal_s - machine_before.steal_s) / capacity,
    )


def _our_cpu_s(target: Target, bystanders: tuple[int, ...]) -> float:
    roots = {p for p in (target.pid, *bystanders) if p}
    return procstat.own_cpu_s() + sum(procstat.usage(root).cpu_s for root in roots)


async def warm_up(target: Target, scenario: Scenario, rounds: int = 2) -> None:
    """Fill connection pools and caches at full speed before anything is measured."""
    quick = replace(scenario, delay_ms=0.0, concurrency=min(scenario.concurrency, 16))
    for _ in range(rounds):
        await run_cell(replace(target, pid=None), quick, seconds=0.0)
