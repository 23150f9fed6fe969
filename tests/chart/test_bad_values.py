"""Bad values are refused by helm (schema or template checks), naming the key at fault.

Each file under bad-values/ starts with `# expect: <key>`: the dotted key that must
appear in helm's error (Helm 4 writes schema paths as /a/b, Helm 3 as a.b).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .rendering import BAD_VALUES, HELMS, RELEASE, run_helm


def expected_key(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <key>'"
    return first.removeprefix("# expect: ").strip()


def test_there_are_enough_bad_values_files() -> None:
    assert len(BAD_VALUES) >= 10


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda p: p.stem)
def test_bad_values_are_refused_naming_the_key(
    bad: Path, helm: str, built_chart: Path, helm_bins: dict[str, Path]
) -> None:
    key = expected_key(bad)
    result = run_helm(
        helm_bins[helm], "template", RELEASE, str(built_chart), "-f", str(bad), check=False
    )
    assert result.returncode != 0, f"{bad.name} was accepted"
    message = result.stderr
    forms = {key, "/" + key.replace(".", "/")}
    assert any(form in message for form in forms), f"{bad.name}: {key!r} not in:\n{message}"
