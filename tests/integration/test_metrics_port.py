"""METRICS_PORT: /metrics on its own port, so a NetworkPolicy can open it to the scraper alone."""

from __future__ import annotations

from localstack import free_port, http_get


def test_metrics_only_on_the_metrics_port(etcd, start_service) -> None:
    metrics_port = free_port()
    persistence = start_service(
        "persistence", ETCD_ENDPOINTS=etcd.client_url, METRICS_PORT=str(metrics_port)
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    assert http_get(f"{persistence.url}/")[0] == 200
    status, body, _ = http_get(f"{metrics_url}/metrics")
    assert status == 200
    assert b"hashstack_numbers_issued_total 1.0" in body
    # The API port has no /metrics, and the metrics port serves nothing else,
    # whatever Host header the caller sends.
    assert http_get(f"{persistence.url}/metrics")[0] == 404
    spoofed = {"Host": f"127.0.0.1:{metrics_port}"}
    assert http_get(f"{persistence.url}/metrics", headers=spoofed)[0] == 404
    for path in ("/", "/healthz", "/readyz"):
        assert http_get(f"{metrics_url}{path}")[0] == 404, path
    assert http_get(f"{persistence.url}/readyz")[0] == 200


def test_without_metrics_port_metrics_stay_on_the_api_port(start_service) -> None:
    hello = start_service("hello")
    status, body, _ = http_get(f"{hello.url}/metrics")
    assert status == 200
    assert b"hashstack_http_requests_total" in body
