"""Percentiles and per-cell summaries. Pure functions over recorded samples."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One unit of load: a request, or for a tool round trip both legs of it."""

    ok: bool
    started: float
    finished: float
    ttft: float | None
    deltas: int
    deltas_in_window: int
    error: str | None = None
    # Sent while the connections were still starting one by one (`run_cell`'s ramp): its time to
    # first token is not the steady state's.
    during_ramp: bool = False

    @property
    def latency(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class Summary:
    ok: int
    failed: int
    errors: dict[str, int]
    ttft_ms: dict[str, float | None]
    latency_ms: dict[str, float | None]
    deltas: int
    deltas_per_s: float
    requests_per_s: float


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _millis(values: Sequence[float], quantiles: Sequence[int]) -> dict[str, float | None]:
    result: dict[str, float | None] = {}
    for q in quantiles:
        value = percentile(values, q)
        result[f"p{q}"] = None if value is None else value * 1000
    return result


def summarize(samples: Sequence[Sample], window_s: float, span_s: float) -> Summary:
    """Throughput in deltas counts only what arrived inside the measuring window; requests per
    second counts every completed request over the whole span, since a slow server may finish
    none inside the window. Times to first token are those of requests sent after a ramp."""
    good = [s for s in samples if s.ok]
    errors = Counter(s.error or "unknown" for s in samples if not s.ok)
    steady = [s for s in good if not s.during_ramp] or good
    ttfts = [s.ttft for s in steady if s.ttft is not None]
    return Summary(
        ok=len(good),
        failed=len(samples) - len(good),
        errors=dict(errors.most_common(3)),
        ttft_ms=_millis(ttfts, (50, 90, 99)),
        latency_ms=_millis([s.latency for s in good], (50, 99)),
        deltas=sum(s.deltas for s in samples),
        deltas_per_s=sum(s.deltas_in_window for s in samples) / window_s if window_s > 0 else 0.0,
        requests_per_s=len(good) / span_s if span_s > 0 else 0.0,
    )
