"""OpenTelemetry tracing: W3C `traceparent` from the browser through the edge to the services.

Every service process installs a tracer provider (`setup_tracing`). Spans are exported over
OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
set; otherwise nothing is sampled and nothing recorded, yet every request still gets a trace
id that travels in `traceparent` and appears in the log lines (`trace_id`): the cost is a
couple of random numbers per call.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from contextvars import Token

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACEPARENT = "traceparent"
TRACE_ID_HEADER = "x-trace-id"
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_tracer = trace.get_tracer("cfd")
# Whether spans are recorded (an exporter is configured); if not, ids are made directly.
_recording = False


def exporting(env: Mapping[str, str] | None = None) -> bool:
    """Return whether an OTLP endpoint is configured."""
    env = os.environ if env is None else env
    return any(env.get(var, "").strip() for var in ENDPOINT_VARS)


def setup_tracing(service: str, env: Mapping[str, str] | None = None) -> TracerProvider:
    """Install this process's tracer provider: OTLP export when configured, else ids only."""
    env = os.environ if env is None else env
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or f"cfd-{service}"})
    if exporting(env):
        # Imported only when used: the exporter pulls in the OTLP protobufs and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        # Dropped spans still carry fresh trace ids and propagate them.
        sampler: Sampler = ParentBased(ALWAYS_OFF)
        provider = TracerProvider(resource=resource, sampler=sampler)
    trace.set_tracer_provider(provider)
    global _tracer, _recording
    _tracer = provider.get_tracer("cfd")
    _recording = exporting(env)
    return provider


def trace_id() -> str:
    """Return the current trace id as 32 hex digits, or "" outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def start_server_span(
    name: str, headers: Mapping[str, str] | Sequence[tuple[str, str | bytes]]
) -> tuple[Span, Token[Context]]:
    """Start a server span continuing the `traceparent` of `headers`, and make it current.

    Return the span and the token `end_span` detaches; without that, the span stays current
    for the rest of the calling task (one call or request).
    """
    carrier: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in pairs:
        if key == TRACEPARENT or key == "tracestate":
            carrier[key] = value.decode() if isinstance(value, bytes) else value
    if _recording:
        parent = propagate.extract(carrier) if carrier else None
        span = _tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
    else:
        # Nothing is recorded: skip the SDK's sampler and make the ids here (a tenth the cost).
        trace_id = _caller_trace_id(carrier.get(TRACEPARENT, ""))
        span = trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id or random.getrandbits(128), random.getrandbits(64), is_remote=False
            )
        )
    return span, context.attach(trace.set_span_in_context(span))


def start_client_span(name: str) -> tuple[Span, Token[Context]]:
    """Start a client span under the current span (a new trace outside any), and make it current.

    For a call this process makes on its own account, such as a stream it keeps open for
    many clients; `outgoing` then carries the span to the service. `end_span` ends it.
    """
    if _recording:
        span = _tracer.start_span(name, kind=SpanKind.CLIENT)
    else:
        current = trace.get_current_span().get_span_context()
        trace_id = current.trace_id if current.is_valid else random.getrandbits(128)
        span = trace.NonRecordingSpan(
            trace.SpanContext(trace_id, random.getrandbits(64), is_remote=False)
        )
    return span, context.attach(trace.set_span_in_context(span))


def _caller_trace_id(traceparent: str) -> int:
    """Return the trace id of a W3C `version-traceid-spanid-flags` value, 0 when malformed."""
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or parts[0] == "ff" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return 0
    digits = parts[1].lower()
    if digits.strip("0123456789abcdef"):
        return 0
    return int(digits, 16)


def end_span(span: Span, error: str | None = None, token: Token[Context] | None = None) -> None:
    """End a span, marked as failed with `error` when given; detach `token` when given."""
    if error is not None and span.is_recording():
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
    if token is not None:
        context.detach(token)


def outgoing() -> list[tuple[str, str]]:
    """Return the headers that carry the current trace to a downstream call."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def traceparent_of(span: Span) -> str:
    """Return the W3C `traceparent` naming `span`."""
    span_context = span.get_span_context()
    flags = int(span_context.trace_flags)
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"
