"""Prometheus metrics, summed correctly over gunicorn workers (prometheus_client multiprocess).

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR names an existing directory before this
module is imported; the gunicorn config creates it. Without it (a plain `flask run`, the unit
tests) the metrics live in this process's default registry.
"""

from __future__ import annotations

import os

# prometheus_client picks its multiprocess mode when first imported and then needs the
# directory to exist; create it rather than crash a process started outside gunicorn_conf.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "hashstack_http_requests_total",
    "HTTP requests answered, by service, route and status code.",
    ["service", "method", "route", "status"],
)
LATENCY = Histogram(
    "hashstack_http_request_duration_seconds",
    "Time from request to response, by service and route.",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
NUMBERS_ISSUED = Counter(
    "hashstack_numbers_issued_total", "Numbers persistence handed out to its callers."
)
BLOCKS_RESERVED = Counter(
    "hashstack_blocks_reserved_total", "Blocks of numbers reserved from the counter store."
)
BLOCK_RESERVATIONS_FAILED = Counter(
    "hashstack_block_reservations_failed_total",
    "Block reservations that failed (counter store unavailable, contended or corrupt).",
)
COUNTER_CONFLICTS = Counter(
    "hashstack_counter_conflicts_total",
    "Compare-and-swap attempts on the counter that lost to another process.",
)
ETCD_LATENCY = Histogram(
    "hashstack_etcd_request_duration_seconds",
    "Round-trip time of each etcd call (a read or a compare-and-swap), by outcome.",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
UPSTREAM_ERRORS = Counter(
    "hashstack_upstream_errors_total",
    "Calls to a dependency that failed, by dependency and cause.",
    ["dependency", "cause"],
)


def exposition() -> tuple[bytes, str]:
    """The text a Prometheus scrape of /metrics gets, summed over all workers."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
