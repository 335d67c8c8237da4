"""Tracing: ids without an exporter, spans recorded only with one, trace ids in log lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from mesh.logs import JsonFormatter
from mesh.tracing import end_span, exporting, outgoing, setup_tracing, start_server_span, trace_id

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def ids_only() -> Iterator[None]:
    setup_tracing("test", {})
    yield
    setup_tracing("test", {})


def record(message: str) -> dict[str, object]:
    entry = logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)
    parsed: dict[str, object] = json.loads(JsonFormatter("test").format(entry))
    return parsed


def test_only_an_otlp_endpoint_turns_exporting_on() -> None:
    assert not exporting({})
    assert not exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "})
    assert exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert exporting({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})


def test_without_an_exporter_a_span_records_nothing_but_has_a_trace_id() -> None:
    span, token = start_server_span("call", [])
    try:
        assert not span.is_recording()
        assert len(trace_id()) == 32 and int(trace_id(), 16) != 0
    finally:
        end_span(span, token=token)
    assert trace_id() == ""


def test_a_span_continues_the_callers_traceparent_and_passes_it_on() -> None:
    span, token = start_server_span("call", [("traceparent", TRACEPARENT.encode())])
    try:
        assert trace_id() == PARENT_TRACE
        passed = dict(outgoing())["traceparent"]
        assert passed.split("-")[1] == PARENT_TRACE
        assert passed.split("-")[2] != "00f067aa0ba902b7"
    finally:
        end_span(span, token=token)


def test_with_an_exporter_spans_are_recorded() -> None:
    provider = setup_tracing("test", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    try:
        span, token = start_server_span("call", {"traceparent": TRACEPARENT})
        assert span.is_recording()
        end_span(span, token=token)
    finally:
        provider.shutdown()


def test_log_lines_carry_the_trace_id_inside_a_trace_only() -> None:
    assert "trace_id" not in record("outside")
    span, token = start_server_span("call", {"traceparent": TRACEPARENT})
    try:
        assert record("inside")["trace_id"] == PARENT_TRACE
    finally:
        end_span(span, token=token)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{'g' * 32}-00f067aa0ba902b7-01",
        f"ff-{PARENT_TRACE}-00f067aa0ba902b7-01",
        f"00-{PARENT_TRACE}-00f067aa-01",
    ],
)
def test_a_malformed_traceparent_starts_a_new_trace(value: str) -> None:
    span, token = start_server_span("call", {"traceparent": value})
    try:
        assert trace_id() not in ("", PARENT_TRACE, "0" * 32)
    finally:
        end_span(span, token=token)
