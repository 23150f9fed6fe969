"""What tracing costs. Off: the tracing hooks one hash request runs through (hash's request and
its call to persistence, persistence's request, two access log lines), timed in this process
with tracing off, as a share of the CPU a hash request takes (measured under wrk). On: hash's
throughput with every span exported over OTLP/HTTP (to ci/otlp_sink.py) against hash without.
"""

from __future__ import annotations

import time

from hashstack import tracing


def hooks_off_seconds(iterations: int = 200_000) -> float:
    """Seconds the tracing hooks of one hash request take with tracing off."""
    if tracing.enabled():
        raise RuntimeError("tracing is on in the benchmark process: nothing to measure")
    headers: dict[str, str] = {}
    g: dict[str, object] = {}  # stands for flask.g, where web.py keeps a request's span
    started = time.perf_counter()
    for _ in range(iterations):
        for _service in ("hash", "persistence"):
            g["span"] = tracing.start_request("GET", "/", headers)
            if (span := g.get("span")) is not None:  # pragma: no cover (off)
                raise AssertionError(span)
            tracing.log_ids()  # the access log line
        with tracing.span("GET persistence /", {"url.path": "/"}, client=True):
            tracing.inject(headers)
    return (time.perf_counter() - started) / iterations
