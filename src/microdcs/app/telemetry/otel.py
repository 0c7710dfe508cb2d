"""The tracer provider the standard ``OTEL_*`` variables ask for (the OpenTelemetry SDK).

Only the app package touches the SDK; everything below it traces through the API in
:mod:`microdcs.core.tracing`, whose no-op default records nothing and still propagates.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.trace import TracerProvider


def provider_from_environment(environ: Mapping[str, str]) -> TracerProvider | None:
    """A tracer provider as the standard ``OTEL_*`` variables ask, or ``None`` for none.

    Traces are exported only when configured: ``OTEL_TRACES_EXPORTER`` (``otlp``,
    ``console``, ``none``) or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). The exporters read their own ``OTEL_*``
    settings (headers, protocol details), as the OpenTelemetry specification says.
    """
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter_name = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter_name in ("", "none") and not (exporter_name == "" and endpoint):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    service = environ.get("OTEL_SERVICE_NAME", "microdcs")
    provider = SdkTracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
