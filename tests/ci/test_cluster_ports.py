"""The cluster suite (which cannot run here) and the scripts that talk to a release take ports
and object names from the rendered chart (ci/rendered.py), never from literals: once
tests/cluster/test_scale_out.py read /metrics on 8080, where nothing served since metrics had
moved to 9090. This scans their code for every port number the chart renders in any of its
topologies and for names composed from the release name."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rendered import Rendered

from tests.support.helm import installed_helms
from tests.support.paths import CHART, ROOT

CLUSTER_SUITE = sorted((ROOT / "tests" / "cluster").glob("*.py"))
# The scripts that talk to a release on a cluster.
SCRIPTS = [ROOT / "ci" / name for name in ("registry-flow.sh", "e2e.sh", "bundle/install.sh")]
TOPOLOGIES = [
    *sorted((CHART / "ci").glob("*.yaml")),
    *sorted((ROOT / "ci" / "registry-flow").glob("*.yaml")),
]
PORT_KEYS = {"port", "containerPort", "targetPort", "hostPort", "nodePort"}
# Names the suite composes itself are `{RELEASE}-...`: the chart decides those.
RELEASE_NAME = re.compile(r"\$\{?\w*RELEASE\}?-[a-z]")


def port_numbers(node: Any) -> Iterator[int]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PORT_KEYS and isinstance(value, int):
                yield value
            else:
                yield from port_numbers(value)
    elif isinstance(node, list):
        for value in node:
            yield from port_numbers(value)


@pytest.fixture(scope="module")
def chart_ports() -> set[int]:
    """Every port number the chart renders, with its defaults and in each ci topology."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELM", str(installed_helms()["helm"]))
        renders = [Rendered.of(), *(Rendered.of(values_files=(t,)) for t in TOPOLOGIES)]
        ports = {n for r in renders for obj in r.objects for n in port_numbers(obj)}
        ports |= {int(v) for r in renders for obj in r.objects if obj["kind"] == "ConfigMap"
                  for k, v in (obj.get("data") or {}).items() if k.endswith("PORT")}  # fmt: skip
    assert {2379, 9090} <= ports, "the scan would miss etcd's and the metrics port"
    return ports


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose may name a port)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def python_literals(path: Path, ports: set[int]) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = docstrings(tree)
    numbers = "|".join(str(p) for p in sorted(ports))
    in_text = re.compile(rf"(?<![\d.])({numbers})(?![\d.])")
    found = []
    for node in ast.walk(tree):
        where = f"{shown(path)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and id(node) not in skip:
            value = node.value
            if type(value) is int and value in ports:
                found.append(f"{where}: port {value}")
            elif isinstance(value, str) and in_text.search(value):
                found.append(f"{where}: port in {value!r}")
            elif isinstance(value, str) and value.startswith("app.kubernetes.io/"):
                found.append(f"{where}: label {value!r} (use the rendered selector)")
        elif isinstance(node, ast.JoinedStr):
            for first, second in itertools.pairwise(node.values):
                if (
                    isinstance(first, ast.FormattedValue)
                    and isinstance(first.value, ast.Name)
                    and "RELEASE" in first.value.id
                    and isinstance(second, ast.Constant)
                    and str(second.value).startswith("-")
                ):
                    found.append(f"{where}: a name made of {first.value.id}")
    return found


def shell_literals(path: Path, ports: set[int]) -> list[str]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        where = f"{shown(path)}:{number}"
        if RELEASE_NAME.search(code):
            found.append(f"{where}: a name made of the release name: {line.strip()}")
        if "port-forward" in code or "/proxy/" in code:
            for port in re.findall(r":(\d+)", code):
                if int(port) in ports:
                    found.append(f"{where}: port {port}: {line.strip()}")
    return found


def test_the_cluster_suite_takes_ports_and_names_from_the_rendered_chart(
    chart_ports: set[int],
) -> None:
    assert CLUSTER_SUITE, "no tests/cluster modules found"
    found = [hit for path in CLUSTER_SUITE for hit in python_literals(path, chart_ports)]
    assert not found, "take these from tests/cluster/kube.py's render():\n" + "\n".join(found)


def test_scripts_that_talk_to_a_release_take_them_from_the_rendered_chart(
    chart_ports: set[int],
) -> None:
    found = [hit for path in SCRIPTS for hit in shell_literals(path, chart_ports)]
    assert not found, "take these from ci/rendered.py or the live objects:\n" + "\n".join(found)


def test_the_scan_finds_what_it_is_for(chart_ports: set[int], tmp_path: Path) -> None:
    """The scan is not blind: the literals this test exists for are caught."""
    module = tmp_path / "test_x.py"
    module.write_text(
        '"""Docs may say 8080."""\n'
        "URL = 'http://127.0.0.1:8080/metrics'\n"
        "PORT = 9090\n"
        "NAME = f'{RELEASE}-persistence'\n"
        "SELECTOR = {'app.kubernetes.io/name': 'hash'}\n"
        "FINE = 'timeout=600s'\n"
    )
    (tmp_path / "x.sh").write_text(
        "# comments may say :5000\n"
        'kubectl port-forward "service/$REGISTRY_RELEASE-registry" "$P:5000"\n'
        "kubectl get --raw /api/v1/namespaces/n/services/$svc:$port/proxy/\n"
    )
    py = python_literals(module, chart_ports)
    sh = shell_literals(tmp_path / "x.sh", chart_ports)
    assert [h.split(": ", 1)[1] for h in py] == [
        "port in 'http://127.0.0.1:8080/metrics'",
        "port 9090",
        "a name made of RELEASE",
        "label 'app.kubernetes.io/name' (use the rendered selector)",
    ]
    assert len(sh) == 2, sh
    assert "a name made of the release name" in sh[0]
    assert "port 5000" in sh[1]
