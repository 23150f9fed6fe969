"""tracing.*: off by default; on, every service gets the standard OTEL_* variables and its
NetworkPolicy lets it reach the collector's port (and only that, beyond what it had)."""

from __future__ import annotations

from .hardening import render
from .k8s import OUTSIDE, Edge, PolicyModel, by_kind, named, pods
from .rendering import RELEASE

SERVICES = ("hello", "persistence", "hash")
ON = {"tracing": {"enabled": True, "endpoint": "http://otel.monitoring:4318/", "sampleRatio": 0.2}}


def env_of(objects: list[dict], service: str) -> dict[str, str]:
    return named(objects, "ConfigMap", f"{RELEASE}-{service}")["data"]


def outbound(objects: list[dict]) -> set[Edge]:
    model = PolicyModel(list(pods(objects)), by_kind(objects, "NetworkPolicy"))
    return model.outbound_to_outside([(4318, "TCP"), (4317, "TCP"), (443, "TCP")])


def test_off_by_default() -> None:
    objects = render()
    for service in SERVICES:
        assert not [k for k in env_of(objects, service) if k.startswith("OTEL_")]
    assert not {e for e in outbound(objects) if e.dst == OUTSIDE}


def test_on_every_service_exports_to_the_endpoint() -> None:
    objects = render(ON)
    for service in SERVICES:
        env = env_of(objects, service)
        assert {k: v for k, v in env.items() if k.startswith("OTEL_")} == {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel.monitoring:4318",
            "OTEL_SERVICE_NAME": service,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.2",
        }
    assert {(e.src, e.port) for e in outbound(objects) if e.dst == OUTSIDE} == {
        (service, 4318) for service in SERVICES
    }
