"""OpenTelemetry traces: one order's create request, its workflow and its calls in one trace.

Off unless the standard variables ask for it (docs/operations.md, "Traces"):

- `OTEL_TRACES_EXPORTER`: `otlp` (OTLP over HTTP/protobuf), `console` (spans printed to
  stdout), or both, comma-separated; `none`, or unset with no OTLP endpoint: off.
- `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` alone turns `otlp` on.
- `OTEL_SDK_DISABLED=true` turns it all off.

Every other `OTEL_*` variable the OpenTelemetry SDK reads applies as usual (headers,
sampler, batch sizes, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`).

Where spans come from: the API's requests (the FastAPI instrumentation), the Temporal
client's calls and the worker's workflows and activities (the SDK's `TracingInterceptor`,
which carries the trace in each workflow's and activity's headers), and each HTTP call a
worker makes to a remote system (the httpx instrumentation, which sends `traceparent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

# OpenTelemetry is imported when a process traces, not by every process that imports this.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.contrib.opentelemetry import TracingInterceptor

TRACER_NAME = "o2c"
UNTRACED_PATHS = "/healthz,/metrics"
"""Requests left out of traces: probes and scrapes (regular expressions, comma-separated)."""
OTLP_PROTOCOLS = ("http/protobuf",)


class TracingSettingError(ValueError):
    """An `OTEL_*` variable o2c cannot follow; the message names it."""


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the variables ask for; none: tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        names = [name.strip() for name in named.split(",") if name.strip()]
        return [] if names == ["none"] else names
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(environ.get(name, "").strip() for name in endpoints) else []


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        if protocol not in OTLP_PROTOCOLS:
            raise TracingSettingError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: o2c sends OTLP over http/protobuf "
                "only (a collector's port 4318)"
            )
        # The exporter reads its endpoint, headers and timeout from the OTEL_* variables.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise TracingSettingError(
        f"OTEL_TRACES_EXPORTER names '{name}': o2c knows otlp, console and none"
    )


@dataclass(frozen=True)
class Tracing:
    """Where one process's spans go, and how its parts make them."""

    provider: TracerProvider

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], service: str) -> Tracing | None:
        """Tracing as the `OTEL_*` variables ask (the module's docstring), for a process
        named `service` unless OTEL_SERVICE_NAME names it; None when they ask for none."""
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        names = exporter_names(environ)
        if not names:
            return None
        exporters = [_exporter(name, environ) for name in names]
        resource = Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service})
        provider = TracerProvider(resource=resource)
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    def interceptor(self) -> TracingInterceptor:
        """For a Temporal client, and so every worker built on it: spans for starts and
        updates, and for each workflow run and activity, carried in their headers."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return TracingInterceptor(self.provider.get_tracer(TRACER_NAME))

    def instrument_api(self, app: FastAPI) -> None:
        """A span for each request (but probes and scrapes), the trace's root when the
        caller sent no `traceparent`."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=UNTRACED_PATHS,
            # Not a span per ASGI message: the request's span says what they would.
            exclude_spans=["receive", "send"],
        )

    def instrument_http_clients(self) -> None:
        """A span for each HTTP request this process makes with httpx (the remote systems'
        adapters), carrying the trace to the system in `traceparent`. Process-wide."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Send the spans still buffered; call once, as the process ends."""
        self.provider.shutdown()
