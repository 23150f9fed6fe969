"""Tracing, off by default: OpenTelemetry spans exported over OTLP/HTTP.

On when OTEL_TRACES_EXPORTER=otlp (hashstack.config). Then every request is a server span
(continuing the caller's W3C `traceparent`), hash's call to persistence a client span whose
`traceparent` goes with the call, and each block reservation a span of its own; log lines
carry `trace_id` and `span_id`. Off, nothing of OpenTelemetry is imported and each hook below
is one check of a module global.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from .config import Settings

T = TypeVar("T")

_tracer: Any = None  # an opentelemetry Tracer once setup() turned tracing on
_OFF: AbstractContextManager[None] = nullcontext()


def setup(settings: Settings, service: str) -> None:
    """Turn tracing on in this process when the settings say so (idempotent). Call it in
    each gunicorn worker (the app factory runs there): the exporter's thread must not cross
    a fork."""
    global _tracer
    if settings.traces_exporter != "otlp" or _tracer is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The SDK reads the other OTEL_* variables itself (sampler, headers, timeouts, resource
    # attributes); the service name and the endpoint come from Settings.
    resource = Resource.create({SERVICE_NAME: settings.otel_service_name or service})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = provider.get_tracer("hashstack")


def enabled() -> bool:
    return _tracer is not None


class ServerSpan:
    """A request's span, current from start_request to finish."""

    def __init__(self, span: Any, token: Any) -> None:
        self.span, self.token = span, token

    def finish(self, status: int, route: str, request_id: str) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        self.span.set_attribute("hashstack.request_id", request_id)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))
        self.span.update_name(f"{self.span.name} {route}")
        self.span.end()
        context.detach(self.token)


def start_request(method: str, path: str, headers: Any) -> ServerSpan | None:
    """A server span for an incoming request (`headers`: its header mapping, e.g. werkzeug's
    Headers), child of its `traceparent` if any."""
    if _tracer is None:
        return None
    from opentelemetry import context, propagate, trace

    span = _tracer.start_span(
        method,
        context=propagate.extract(headers),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    )
    return ServerSpan(span, context.attach(trace.set_span_in_context(span)))


def span(
    name: str, attributes: Mapping[str, Any] | None = None, client: bool = False
) -> AbstractContextManager[Any]:
    """A span around a block (current inside it); `client`: a call to another service."""
    if _tracer is None:
        return _OFF
    return _span(name, client, attributes or {})


@contextmanager
def _span(name: str, client: bool, attributes: Mapping[str, Any]) -> Iterator[Any]:
    from opentelemetry import trace

    kind = trace.SpanKind.CLIENT if client else trace.SpanKind.INTERNAL
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's `traceparent` to outgoing headers."""
    if _tracer is not None:
        from opentelemetry import propagate

        propagate.inject(headers)


def in_current_context(call: Callable[..., T]) -> Callable[..., T]:
    """`call`, to run later in another thread as a child of the current span."""
    if _tracer is None:
        return call
    captured = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> T:
        return captured.run(call, *args, **kwargs)

    return run


def log_ids() -> dict[str, str] | None:
    """The current trace and span ids for a log line, or None."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return None
    return {"trace_id": f"{current.trace_id:032x}", "span_id": f"{current.span_id:016x}"}
