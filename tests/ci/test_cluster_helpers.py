"""Unit tests of tests/cluster/helpers.py: the pure parts of the cluster suite."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

import pytest


def answer(number: int, digest: str | None = None) -> dict[str, object]:
    digest = digest or hashlib.sha256(str(number).encode()).hexdigest()
    return {"data": {"number": number, "hash": digest}}


def test_service_proxy_path_by_port_name(helpers: ModuleType) -> None:
    assert (
        helpers.service_proxy_path("e2e", "hashstack-hash", "http")
        == "/api/v1/namespaces/e2e/services/hashstack-hash:http/proxy/"
    )


def test_service_proxy_path_with_scheme_port_number_and_subpath(helpers: ModuleType) -> None:
    assert (
        helpers.service_proxy_path("ns", "web", "8443", "/readyz", scheme="https")
        == "/api/v1/namespaces/ns/services/https:web:8443/proxy/readyz"
    )


@pytest.mark.parametrize(
    ("namespace", "service", "port", "scheme"),
    [
        ("Upper", "svc", "http", ""),
        ("ns", "svc/../x", "http", ""),
        ("ns", "-svc", "http", ""),
        ("ns", "svc", "ht:tp", ""),
        ("ns", "svc", "http", "ftp"),
        ("ns", "a" * 64, "http", ""),
    ],
)
def test_service_proxy_path_rejects_what_the_api_server_would(
    helpers: ModuleType, namespace: str, service: str, port: str, scheme: str
) -> None:
    with pytest.raises(ValueError, match=r"^(namespace|service|port|scheme) "):
        helpers.service_proxy_path(namespace, service, port, scheme=scheme)


def test_find_duplicates(helpers: ModuleType) -> None:
    assert helpers.find_duplicates([]) == {}
    assert helpers.find_duplicates(range(1000)) == {}
    assert helpers.find_duplicates([5, 1, 5, 2, 5, 2]) == {5: 3, 2: 2}


def test_parse_hash_answer_checks_the_sha256(helpers: ModuleType) -> None:
    assert helpers.parse_hash_answer(answer(42)) == 42
    with pytest.raises(ValueError, match="expected"):
        helpers.parse_hash_answer(answer(42, digest=hashlib.sha256(b"43").hexdigest()))


@pytest.mark.parametrize(
    "payload",
    [None, [], {"data": 7}, {"error": "x"}, {"data": {"number": "7", "hash": ""}},
     {"data": {"number": True, "hash": hashlib.sha256(b"True").hexdigest()}}],
)  # fmt: skip
def test_parse_hash_answer_rejects_other_shapes(helpers: ModuleType, payload: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every shape error is a ValueError
        helpers.parse_hash_answer(payload)


def test_ledger_records_numbers_and_failures(helpers: ModuleType) -> None:
    ledger = helpers.Ledger()
    for status, number in [(200, 1), (200, 2), (503, None), (0, None), (200, 2), (503, None)]:
        ledger.record(status, number)
    assert ledger.numbers == [1, 2, 2]
    assert dict(ledger.failures) == {503: 2, 0: 1}
    assert ledger.duplicates() == {2: 2}


def test_helm_set_args_are_sorted_and_booleans_lowercase(helpers: ModuleType) -> None:
    args = helpers.helm_set_args({"b.x": 2, "a": True, "c": "s"})
    assert args == ["--set", "a=true", "--set", "b.x=2", "--set", "c=s"]


def test_image_values_point_only_the_three_services_at_the_pushed_images(
    helpers: ModuleType,
) -> None:
    assert helpers.image_values("", "") == {}
    values = helpers.image_values("localhost:5001", "abc123")
    assert values == {
        f"{svc}.image.{key}": value
        for svc in ("hello", "persistence", "hash")
        for key, value in (
            ("registry", "localhost:5001"),
            ("repository", f"hashstack/{svc}"),
            ("tag", "abc123"),
        )
    }
    # global.imageRegistry would rename etcd, the registry and haproxy too: nothing pushes those.
    assert not [key for key in values if key.startswith("global.")]
    assert helpers.image_values("", "t") == {
        "hello.image.tag": "t",
        "persistence.image.tag": "t",
        "hash.image.tag": "t",
    }


def test_kept_claims_follow_the_charts_policy(helpers: ModuleType) -> None:
    claims = ["data-hashstack-etcd-0", "data-hashstack-etcd-2", "hashstack-registry", "other"]
    prefixes = ["data-hashstack-etcd-"]
    assert helpers.kept_claims(claims, {"hashstack-registry"}, prefixes) == (
        ["data-hashstack-etcd-0", "data-hashstack-etcd-2", "hashstack-registry"],
        ["other"],
    )
    assert helpers.kept_claims(claims[:3], set(), prefixes) == (
        ["data-hashstack-etcd-0", "data-hashstack-etcd-2"],
        ["hashstack-registry"],
    )
    # Another release's claims are not this one's, nor a name that only starts like one.
    assert helpers.kept_claims(["data-x-etcd-0"], set(), prefixes) == ([], ["data-x-etcd-0"])
    assert helpers.kept_claims(["data-hashstack-etcd-0x"], set(), prefixes)[0] == []
    assert helpers.kept_claims(["data-hashstack-etcd-0"], set(), []) == (
        [],
        ["data-hashstack-etcd-0"],
    )


def test_kind_cluster_name_from_the_context(helpers: ModuleType) -> None:
    assert helpers.kind_cluster_name("kind-hashstack") == "hashstack"
    assert helpers.kind_cluster_name("kind-") is None
    assert helpers.kind_cluster_name("minikube") is None
    assert helpers.kind_cluster_name("kubernetes-admin@kubernetes") is None


def test_measurement_counts_failures_and_the_slowest_call(helpers: ModuleType) -> None:
    ledger = helpers.Ledger()
    run = helpers.Measurement("upgrade", ledger)
    for status, number, seconds in [
        (200, 1, 0.1),
        (503, None, 2.5),
        (0, None, 10.0),
        (200, 2, 0.2),
    ]:
        run.record(status, number, seconds)
    assert (run.calls, run.failed, run.slowest) == (4, 2, 10.0)
    assert ledger.numbers == [1, 2]
    assert run.summary() == "upgrade: 4 calls, 2 failed (0: 1, 503: 1), slowest 10.000s"
    clean = helpers.Measurement("drain", helpers.Ledger())
    clean.record(200, 7, 0.05)
    assert clean.summary() == "drain: 1 calls, 0 failed, slowest 0.050s"


def test_kubeconfig_candidates_follow_kubectl_order(helpers: ModuleType, tmp_path: Path) -> None:
    home = tmp_path
    assert helpers.kubeconfig_candidates("/x", {"KUBECONFIG": "/y"}, home) == [Path("/x")]
    assert helpers.kubeconfig_candidates(None, {"KUBECONFIG": "/a:/b::"}, home) == [
        Path("/a"),
        Path("/b"),
    ]
    assert helpers.kubeconfig_candidates(None, {}, home) == [home / ".kube" / "config"]


def test_leftovers_ignore_kept_kinds_and_namespace_defaults(helpers: ModuleType) -> None:
    objects = [
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "data-hashstack-etcd-0"}},
        {"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}},
        {"kind": "ServiceAccount", "metadata": {"name": "default"}},
        {"kind": "Service", "metadata": {"name": "hashstack-hash"}},
        {"kind": "ConfigMap", "metadata": {"name": "hashstack-hash"}},
    ]
    kept = frozenset({"PersistentVolumeClaim"})
    assert helpers.leftovers(objects, kept) == [
        "ConfigMap/hashstack-hash",
        "Service/hashstack-hash",
    ]
    assert helpers.leftovers(objects[:3], kept) == []
