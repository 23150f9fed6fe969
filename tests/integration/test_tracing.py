"""Tracing end to end: hash and persistence under gunicorn export their spans over OTLP/HTTP
to a receiver on 127.0.0.1 (ci/otlp_sink.py, decoding the protobuf export); one hash request
is one trace across both services, hash -> persistence -> the block reservation, and the
log lines of that request carry its trace id next to the request id."""

from __future__ import annotations

import json
import subprocess
import sys

from otlp_sink import OtlpSink

from localstack import http_get
from tests.support.wait import wait_until

RID = "trace-me-1"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


def test_one_hash_request_is_one_trace_across_both_services(etcd, start_service) -> None:
    with OtlpSink() as sink:
        tracing = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export soon after the request
        }
        persistence = start_service("persistence", ETCD_ENDPOINTS=etcd.client_url, **tracing)
        hash_ = start_service("hash", PERSISTENCE_URL=persistence.url, **tracing)
        status, body, headers = http_get(f"{hash_.url}/", headers={"X-Request-ID": RID})
        assert status == 200, body
        assert headers["X-Request-ID"] == RID

        def request_spans() -> list:
            return [s for s in sink.spans if s.attributes.get("hashstack.request_id") == RID]

        wait_until(lambda: len(request_spans()) == 2, 15, "both services' server spans")
        (trace_id,) = {s.trace_id for s in request_spans()}
        wait_until(lambda: len(sink.trace(trace_id)) >= 4, 15, "the whole trace")
        spans = {(s.service, s.name): s for s in sink.trace(trace_id)}
        assert set(spans) == {
            ("hash", "GET /"),
            ("hash", "GET persistence /"),
            ("persistence", "GET /"),
            ("persistence", "reserve block"),
        }, spans
        root = spans["hash", "GET /"]
        call = spans["hash", "GET persistence /"]
        served = spans["persistence", "GET /"]
        reserve = spans["persistence", "reserve block"]
        assert root.parent_id == ""
        assert root.kind == SERVER
        assert call.parent_id == root.span_id
        assert call.kind == CLIENT
        # persistence continued the traceparent hash sent with the call
        assert served.parent_id == call.span_id
        assert served.kind == SERVER
        assert reserve.parent_id == served.span_id
        assert root.attributes["http.response.status_code"] == 200
        assert reserve.attributes["hashstack.block_size"] == 100
        # readiness probes (hash's checks persistence) make no traces
        assert http_get(f"{hash_.url}/readyz")[0] == 200
        assert http_get(f"{hash_.url}/")[0] == 200
        wait_until(lambda: len({s.trace_id for s in sink.spans}) == 2, 15, "the second trace")
        assert not [s for s in sink.spans if "healthz" in s.name or "readyz" in s.name]

    for service, span in ((hash_, root), (persistence, served)):
        (line,) = [
            json.loads(line)
            for line in service.log_text().splitlines()
            if f'"request_id": "{RID}"' in line and '"logger": "hashstack.access"' in line
        ]
        assert (line["trace_id"], line["span_id"]) == (trace_id, span.span_id)


def test_tracing_off_imports_no_opentelemetry() -> None:
    """Off by default: the services serve without importing any of OpenTelemetry."""
    code = (
        "import sys\n"
        "from hashstack import hash, hello, persistence\n"
        "from hashstack.config import Settings\n"
        "from hashstack.memory_counter import MemoryCounter\n"
        "client = hello.create_app(Settings()).test_client()\n"
        "assert client.get('/').status_code == 200\n"
        "client = persistence.create_app(Settings(store='memory'), MemoryCounter()).test_client()\n"
        "assert client.get('/').status_code == 200\n"
        "hash.create_app(Settings())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
