"""What every service shares: request ids, JSON errors, access logs, health and metrics routes."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import metrics, tracing
from .config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
# Probes and scrapes: a trace every few seconds that says nothing.
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
# A caller's id is kept only when it is short and plain, so it is safe in logs and headers.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("hashstack.access")
log = logging.getLogger("hashstack")


class ServiceError(Exception):
    """An error that becomes a JSON answer with its own status code."""

    status = 503

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


ReadinessCheck = Callable[[], None]  # returns when ready, raises when not


def current_request_id() -> str:
    return str(g.get("request_id", ""))


def arrival_port(environ: dict[str, Any]) -> int | None:
    """The local port a request came in on: gunicorn's socket, not the Host header a caller
    may set; None outside gunicorn."""
    sock = environ.get("gunicorn.socket")
    try:
        return int(sock.getsockname()[1]) if sock is not None else None
    except (OSError, TypeError, ValueError, IndexError):
        return None


def create_service_app(service: str, readiness: ReadinessCheck, settings: Settings) -> Flask:
    """A service's Flask app. `settings.metrics_port` (METRICS_PORT): when set, /metrics is
    answered only on that port and that port answers nothing else, so a NetworkPolicy can
    open it to the scraper without opening the API. Tracing starts here when it is on."""
    metrics_port = settings.metrics_port
    tracing.setup(settings, service)
    app = Flask(f"hashstack.{service}")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def start_request() -> None:
        if metrics_port:
            on_metrics_port = arrival_port(request.environ) == metrics_port
            if on_metrics_port != (request.path == "/metrics"):
                abort(404)
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        valid = _VALID_REQUEST_ID.fullmatch(incoming)
        g.request_id = incoming if valid else uuid.uuid4().hex
        g.started = time.perf_counter()
        if request.path not in UNTRACED:
            g.span = tracing.start_request(request.method, request.path, request.headers)

    @app.after_request
    def finish_request(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        response.headers[REQUEST_ID_HEADER] = current_request_id()
        metrics.REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        metrics.LATENCY.labels(service, route).observe(elapsed)
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "service": service,
                "request_id": current_request_id(),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 3),
                "remote": request.remote_addr,
            },
        )
        if (span := g.get("span")) is not None:
            span.finish(response.status_code, route, current_request_id())
        return response

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> tuple[Response, int]:
        log.warning("%s", error, extra={"service": service, "request_id": current_request_id()})
        response = jsonify(error=str(error))
        if error.status == 503:
            response.headers["Retry-After"] = "1"
        return response, error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        return jsonify(error=f"{status} {error.name}: {error.description}"), status

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[Response, int]:
        # The traceback goes to the log, never to the caller.
        log.exception("unhandled error", extra={"service": service})
        return jsonify(error="internal error; see the service log for the request id"), 500

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            readiness()
        except Exception as error:  # whatever the dependency raised: not ready, and why
            raise ServiceError(f"not ready: {error}") from None
        return jsonify(status="ready")

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    return app
