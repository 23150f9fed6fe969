"""skaffold.yaml against Skaffold's official JSON schema for skaffold/v4beta14: from
../shared/schemas beside the repository (never copied into it) or, on a CI runner, from the
skaffold binary itself (tests/support/schemas.py)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from tests.support.schemas import skaffold_schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    found = skaffold_schema()
    if found is None:
        pytest.skip("no Skaffold schema: neither ../shared/schemas nor a skaffold binary here")
    schema, _ = found
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_api_version(config):
    assert config["apiVersion"] == "skaffold/v4beta14"
    assert config["kind"] == "Config"


def test_skaffold_yaml_is_valid(validator, config):
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(config)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["deploy"]["helm"]["releases"][0].update(setValueTemplate={}),
        lambda c: c["build"]["artifacts"][0]["docker"].update(targets="hello"),
        lambda c: c["profiles"][0]["activation"][0].update(kubecontext="kind-.*"),
        lambda c: c["portForward"][0].update(localport=8080),
    ],
    ids=["release-key", "docker-key", "activation-key", "port-forward-key"],
)
def test_schema_rejects_misspelt_keys(validator, config, mutate):
    """Control: the schema really is strict about the parts skaffold.yaml uses."""
    broken: dict[str, Any] = copy.deepcopy(config)
    mutate(broken)
    assert list(validator.iter_errors(broken))


def test_schema_lookup_honours_skaffold_variable(tmp_path, monkeypatch):
    """$SKAFFOLD alone (a binary off PATH) is the skaffold asked for its schema. The stand-in
    prints what `skaffold schema get` would (no skaffold binary can run here); only the lookup
    is under test."""
    from tests.support import schemas

    stand_in = tmp_path / "skaffold-elsewhere"
    stand_in.write_text(
        '#!/bin/sh\n[ "$*" = "schema get skaffold/v4beta14" ] && echo \'{"title": "stand-in"}\'\n'
    )
    stand_in.chmod(0o755)
    monkeypatch.setattr(schemas, "SHARED_SCHEMAS", tmp_path / "no-shared-schemas")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("SKAFFOLD", str(stand_in))
    found = schemas.skaffold_schema()
    assert found is not None
    assert found[0] == {"title": "stand-in"}
    monkeypatch.delenv("SKAFFOLD")
    assert schemas.skaffold_schema() is None
