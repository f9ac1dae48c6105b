"""The benchmark's percentiles and cell summaries."""

from __future__ import annotations

import pytest
from bench.stats import Sample, percentile, summarize


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 100) == 4.0
    assert percentile(values, 90) == pytest.approx(3.7)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def _sample(ok: bool, started: float, finished: float, ttft: float | None, deltas: int, in_window: int,
            error: str | None = None) -> Sample:
    return Sample(ok=ok, started=started, finished=finished, ttft=ttft, deltas=deltas, deltas_in_window=in_window,
                  error=error)


def test_summarize_counts_failures_and_keeps_them_out_of_latencies() -> None:
    samples = [
        _sample(True, 0.0, 0.010, 0.002, 256, 256),
        _sample(True, 0.0, 0.030, 0.004, 256, 100),
        _sample(False, 0.0, 5.0, None, 3, 3, error="HTTP 500"),
    ]
    summary = summarize(samples, window_s=2.0, span_s=4.0)
    assert (summary.ok, summary.failed, summary.errors) == (2, 1, {"HTTP 500": 1})
    assert summary.ttft_ms["p50"] == pytest.approx(3.0)
    assert summary.latency_ms["p99"] == pytest.approx(29.8)
    assert summary.deltas == 515
    assert summary.deltas_per_s == pytest.approx(359 / 2.0)
    assert summary.requests_per_s == pytest.approx(0.5)


def test_times_to_first_token_sent_during_a_ramp_are_left_out() -> None:
    # The first requests of a staggered start meet an emptier server than the steady state does.
    samples = [
        Sample(ok=True, started=0.0, finished=1.0, ttft=0.001, deltas=8, deltas_in_window=0, during_ramp=True),
        Sample(ok=True, started=1.0, finished=2.0, ttft=0.050, deltas=8, deltas_in_window=8),
        Sample(ok=True, started=1.1, finished=2.1, ttft=0.070, deltas=8, deltas_in_window=8),
    ]
    summary = summarize(samples, window_s=1.0, span_s=2.1)
    assert summary.ttft_ms["p50"] == pytest.approx(60.0)
    assert summary.deltas == 24
    assert summary.deltas_per_s == pytest.approx(16.0)
