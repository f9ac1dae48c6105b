"""Prometheus metrics. With several workers, each process writes its samples to the directory
named by PROMETHEUS_MULTIPROC_DIR (set by `riposte serve` before any worker starts) and a scrape
of any worker adds them up.

Label values are bounded: routes are templates (`/v1/responses/{response_id}`), not paths, and
models are the configured providers' model names.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter("riposte_http_requests_total", "HTTP requests by route, method and status.",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("riposte_http_request_duration_seconds",
                         "Time from request to the end of the response body (whole stream included).",
                         ["route", "method"], buckets=_LATENCY_BUCKETS)
TIME_TO_FIRST_TOKEN = Histogram("riposte_time_to_first_token_seconds",
                                "Time from the start of a turn to the first upstream chunk.",
                                ["provider", "model"], buckets=_LATENCY_BUCKETS)
TOKENS = Counter("riposte_tokens_total", "Tokens by provider, model and direction (input or output).",
                 ["provider", "model", "direction"])
RESPONSES = Counter("riposte_responses_total", "Finished Responses turns by final status.",
                    ["provider", "model", "status"])
UPSTREAM_ERRORS = Counter("riposte_upstream_errors_total", "Upstream failures by provider and kind.",
                          ["provider", "kind"])
UPSTREAM_RETRIES = Counter("riposte_upstream_retries_total",
                           "Upstream calls retried on a fresh connection after a stale keep-alive one failed, "
                           "by upstream (scheme://host:port) and cause.", ["upstream", "cause"])
PACED_READ_WINDOW = Gauge("riposte_paced_read_window_seconds",
                          "How long a paced upstream's tokens are held to share one pass and one write, by "
                          "upstream (scheme://host:port): paced_read_window_ms, wider while the server falls behind.",
                          ["upstream"], multiprocess_mode="max")
ACTIVE_STREAMS = Gauge("riposte_active_streams", "Server-sent event streams being written now.",
                       multiprocess_mode="livesum")
WEBSOCKET_CONNECTIONS = Gauge("riposte_websocket_connections", "WebSocket-mode connections open now.",
                              multiprocess_mode="livesum")
TOOL_CALLS = Counter("riposte_tool_calls_total", "Server-side tool calls by tool type and outcome.",
                     ["type", "outcome"])
TOOL_SECONDS = Histogram("riposte_tool_call_duration_seconds", "Server-side tool call duration.", ["type"],
                         buckets=_LATENCY_BUCKETS)
GUARDRAIL_CHECKS = Counter("riposte_guardrail_checks_total",
                           "Guardrail checks by guardrail, stage (input or output) and outcome: passed, flagged, "
                           "failed_closed or failed_open (the guard could not answer).",
                           ["guardrail", "stage", "outcome"])
INGESTION_QUEUE = Gauge("riposte_ingestion_queue", "Vector-store files waiting for or in ingestion.",
                        multiprocess_mode="livesum")
INGESTION_FILES = Counter("riposte_ingestion_files_total", "Vector-store files ingested, by final status.",
                          ["status"])


def exposition() -> tuple[bytes, str]:
    """The text a scrape returns, for this process or, with workers, for all of them."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
