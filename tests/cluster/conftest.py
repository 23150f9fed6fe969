"""Cluster suite fixtures. One reachability check skips the whole directory (one line in
the summary) when no cluster answers; ci/e2e.sh sets HASHSTACK_REQUIRE_CLUSTER=1 so that
on a CI cluster job the same condition fails instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pykube
import pytest
from pytest_helm_charts.clusters import Cluster
from pytest_helm_charts.k8s.namespace import ensure_namespace_exists
from pytest_helm_charts.utils import delete_and_wait_for_objects

from .helpers import Ledger
from .kube import HashClient, Helm, find_kubeconfig, unreachable_reason

HERE = Path(__file__).resolve().parent


def _kubeconfig_option(config: pytest.Config) -> str | None:
    # --kubeconfig is registered by pytest-helm-charts.
    value = config.getoption("kubeconfig", default=None)
    return str(value) if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Checked once, and only when this directory's tests were collected. A skip mark added
    # here folds into one summary line per file with the count.
    mine = [item for item in items if HERE in item.path.parents]
    if not mine or os.environ.get("HASHSTACK_REQUIRE_CLUSTER") == "1":
        return
    reason = unreachable_reason(_kubeconfig_option(config))
    if reason is not None:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _cluster_required(pytestconfig: pytest.Config) -> None:
    # Reached only when no skip was added: with HASHSTACK_REQUIRE_CLUSTER=1, fail instead.
    reason = unreachable_reason(_kubeconfig_option(pytestconfig))
    if reason is not None:
        pytest.fail(reason)


@pytest.fixture(scope="module")
def kube_config(pytestconfig: pytest.Config) -> str:
    """Overrides pytest-helm-charts' fixture so ~/.kube/config works without KUBECONFIG."""
    path = find_kubeconfig(_kubeconfig_option(pytestconfig))
    assert path is not None
    return str(path)


@pytest.fixture(scope="module")
def api(kube_cluster: Cluster) -> pykube.HTTPClient:
    assert kube_cluster.kube_client is not None
    return kube_cluster.kube_client


@pytest.fixture(scope="module")
def namespace(api: pykube.HTTPClient) -> Iterator[str]:
    """A namespace of its own per run, deleted with everything in it when the module ends
    (the PVCs too: their volumes are released, which takes longer than the plugin's 120 s)."""
    name = f"hashstack-e2e-{os.getpid()}"
    ns, _ = ensure_namespace_exists(api, name)
    yield name
    delete_and_wait_for_objects(api, pykube.Namespace, [ns], timeout_sec=600)


@pytest.fixture(scope="module")
def helm(kube_config: str, namespace: str) -> Helm:
    return Helm(kube_config, namespace)


@pytest.fixture(scope="module")
def hash_client(api: pykube.HTTPClient, namespace: str) -> HashClient:
    return HashClient(api, namespace)


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()
