"""The chart READMEs' values tables are generated from values.yaml's `# --` comments and kept in
step. The root README links to charts/hashstack/README.md instead of repeating the table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .rendering import CHART, ROOT

SCRIPT = ROOT / "ci" / "values-table.py"
README = CHART / "README.md"
SUBCHARTS = ("etcd", "registry")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("values_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["values_table"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vt() -> ModuleType:
    return load_script()


def test_every_value_is_documented(vt: ModuleType) -> None:
    assert vt.undocumented() == []


def test_every_row_has_a_description_and_a_default(vt: ModuleType) -> None:
    rows = vt.rows()
    assert len(rows) > 50
    keys = [row.key for row in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        assert row.description, row.key
        assert row.default, row.key
    by_key = {row.key: row for row in rows}
    assert by_key["hash.image.tag"].type == "string"
    assert by_key["hash.replicaCount"].default == "1"
    assert by_key["hash.service.nodePort"].type == "int"
    assert by_key["etcd.enabled"].default == "true"


def test_the_chart_readme_table_matches_values_yaml(vt: ModuleType) -> None:
    """The chart's README has the markers and holds the table values.yaml gives today."""
    current = vt.between_markers(README.read_text())
    assert current is not None, f"{README.relative_to(ROOT)} lost its values-table markers"
    assert current == vt.table(), (
        f"{README.relative_to(ROOT)}: values table out of date; "
        f"run ci/values-table.py --write {README.relative_to(ROOT)}"
    )


def test_the_table_tracks_a_change(vt: ModuleType, tmp_path: Path) -> None:
    """A changed default or comment changes the table (the check can fail)."""
    values = tmp_path / "values.yaml"
    text = (CHART / "values.yaml").read_text()
    values.write_text(text.replace("replicaCount: 1\n", "replicaCount: 4\n", 1))
    assert vt.table(values) != vt.table()
    undocumented = tmp_path / "undocumented.yaml"
    undocumented.write_text(text + "\nsurprise: 1\n")
    assert vt.undocumented(undocumented) == ["surprise"]


def test_script_check_mode(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(README)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    stale = tmp_path / "README.md"
    stale.write_text("# x\n<!-- values-table:start -->\n| old |\n<!-- values-table:end -->\n")
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(stale)], capture_output=True, text=True
    )
    assert bad.returncode == 1
    subprocess.run([sys.executable, str(SCRIPT), "--write", str(stale)], check=True)
    assert subprocess.run([sys.executable, str(SCRIPT), "--check", str(stale)]).returncode == 0
    assert stale.read_text().startswith("# x\n<!-- values-table:start -->\n| Key |")


@pytest.mark.parametrize("subchart", SUBCHARTS)
def test_subchart_readme_tables_match_their_values(vt: ModuleType, subchart: str) -> None:
    chart = CHART / "charts" / subchart
    assert vt.undocumented(chart / "values.yaml") == []
    current = vt.between_markers((chart / "README.md").read_text())
    assert current == vt.table(chart / "values.yaml"), (
        f"run ci/values-table.py --values {chart.relative_to(ROOT)}/values.yaml "
        f"--write {chart.relative_to(ROOT)}/README.md"
    )
