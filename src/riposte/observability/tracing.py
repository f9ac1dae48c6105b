"""OpenTelemetry traces, off unless `otlp_traces_endpoint` is set: a span per turn, per upstream
call and per tool call, named and attributed after the OpenTelemetry GenAI conventions.

Spans are started with an explicit parent and ended by hand, never made "current": a turn is
an async generator that the web framework may close from another task, and attaching a context
in one task and detaching it in another is an error in OpenTelemetry.
"""

from __future__ import annotations

import logging

from opentelemetry import trace

from riposte import __version__

logger = logging.getLogger(__name__)

# A proxy until a provider is configured; without one every span is a cheap no-op.
tracer = trace.get_tracer("riposte", __version__)


def configure_tracing(otlp_traces_endpoint: str | None, service_name: str = "riposte") -> bool:
    """Export spans over OTLP/HTTP (protobuf) to the endpoint, e.g. http://127.0.0.1:4318/v1/traces."""
    if not otlp_traces_endpoint:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.error("tracing is configured but the OpenTelemetry SDK is missing: pip install 'riposte[otel]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                       "service.version": __version__}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_endpoint)))
    trace.set_tracer_provider(provider)
    return True


def shutdown_tracing() -> None:
    """Flush spans still queued, so the last turns before a stop are exported."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
