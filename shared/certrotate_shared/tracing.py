"""OpenTelemetry tracing across the bus: API request -> saga transition -> command -> worker
handler -> event -> next transition, one trace per rotation as long as messages cause messages.

The trace context travels in the envelope's `headers` (W3C `traceparent`/`tracestate`), so it
crosses Kafka, the in-process log and the outbox alike. Nothing is traced unless an exporter is
configured (`CERTROTATE_OTLP_ENDPOINT`); then every call here returns at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_propagator = TraceContextTextMapPropagator()
_provider: trace.TracerProvider | None = None
_tracer: trace.Tracer | None = None

SERVER, CONSUMER, PRODUCER, INTERNAL = (
    SpanKind.SERVER,
    SpanKind.CONSUMER,
    SpanKind.PRODUCER,
    SpanKind.INTERNAL,
)


def enabled() -> bool:
    """Whether spans are recorded in this process."""
    return _tracer is not None


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Record spans with `provider` (None: stop tracing). Tests pass an in-memory one."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("certrotate") if provider is not None else None


def configure_tracing(service: str, endpoint: str) -> None:
    """Export spans over OTLP/HTTP to `endpoint` (e.g. http://collector:4318/v1/traces);
    an empty endpoint leaves tracing off."""
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"certrotate-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    use_provider(provider)
    log.info("tracing: exporting spans to %s", endpoint)


def shutdown_tracing() -> None:
    """Flush what is buffered (at exit)."""
    shutdown = getattr(_provider, "shutdown", None)
    if shutdown is not None:
        shutdown()


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = INTERNAL,
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span | None]:
    """A span around the block, child of `parent` (trace headers of the message being handled)
    when given, else of the current span; nothing at all (None) while tracing is off."""
    if _tracer is None:
        yield None
        return
    ctx = _propagator.extract(carrier=dict(parent)) if parent else None
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _tracer.start_as_current_span(name, context=ctx, kind=kind, attributes=clean) as current:
        yield current


def current_headers() -> dict[str, str]:
    """The current span's trace context as HTTP headers (empty while tracing is off)."""
    headers: dict[str, str] = {}
    if _tracer is not None:
        _propagator.inject(carrier=headers)
    return headers


def message_headers(
    name: str, *, cause: Mapping[str, str] | None, attributes: Mapping[str, Any]
) -> dict[str, str]:
    """Trace headers for a message being sent: a producer span, child of the current span, or
    of the causing message's trace when nothing is current (a worker's job, a watch's scan)."""
    if _tracer is None:
        return {}
    current = trace.get_current_span().get_span_context().is_valid
    headers: dict[str, str] = {}
    with span(name, kind=PRODUCER, parent=None if current else cause, attributes=attributes):
        _propagator.inject(carrier=headers, context=otel_context.get_current())
    return headers
