"""skaffold.yaml against the chart, the Dockerfile and the sources: in every scenario the chart,
given exactly Skaffold's helm arguments, runs each artifact's freshly built image."""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.skaffold import model
from tests.skaffold.scenarios import (
    ROOT,
    SCENARIO_IDS,
    SCENARIOS,
    ApplyFn,
    Scenario,
    containers,
    helm,
    pod_spec,
    template_args,
)

IMAGE_KEYS = ("IMAGE_DOMAIN", "IMAGE_REPO_NO_DOMAIN", "IMAGE_REPO", "IMAGE_TAG", "IMAGE_DIGEST")
IMAGE_KEYS += ("IMAGE_FULLY_QUALIFIED",)
TEMPLATE_REF = re.compile(
    r"{{\s*\.(" + "|".join(sorted(IMAGE_KEYS, key=len)[::-1]) + r")_(\w+)\s*}}"
)


def all_releases(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("base", r) for r in config["deploy"]["helm"]["releases"]]
    for profile in config.get("profiles", []):
        for release in profile.get("deploy", {}).get("helm", {}).get("releases", []):
            found.append((profile["name"], release))
    return found


def all_artifacts(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("base", a) for a in config["build"]["artifacts"]]
    for profile in config.get("profiles", []):
        found += [(profile["name"], a) for a in profile.get("build", {}).get("artifacts", [])]
    return found


def test_artifact_names_need_no_escaping(config):
    names = [a["image"] for a in config["build"]["artifacts"]]
    assert sorted(names) == ["hash", "hello", "persistence"]
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_]+", name), f"{name}: no - . / : in artifact names"
        assert model.sanitize(name) == name


@pytest.mark.parametrize("where", ["base", "prod"])
def test_every_artifact_sets_registry_repository_tag_and_digest(config, where):
    artifacts = {a["image"] for a in config["build"]["artifacts"]}
    for owner, release in all_releases(config):
        if owner != where:
            continue
        used: dict[str, set[str]] = {a: set() for a in artifacts}
        for key, template in release["setValueTemplates"].items():
            refs = TEMPLATE_REF.findall(str(template))
            assert refs, f"{owner}: {key}: {template!r} names no artifact value"
            for value, artifact in refs:
                assert artifact in artifacts, f"{owner}: {key} names unknown artifact {artifact}"
                # The chart key belongs to the same service as the artifact.
                assert key.startswith(f"{artifact}.image."), f"{owner}: {key} <- {template}"
                used[artifact].add(value)
        for artifact, values in used.items():
            assert {"IMAGE_TAG", "IMAGE_DIGEST"} <= values, f"{owner}: {artifact}: {values}"
            assert values & {"IMAGE_REPO", "IMAGE_REPO_NO_DOMAIN"}, f"{owner}: {artifact}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_profiles_and_push_per_scenario(applied: ApplyFn, scenario: Scenario):
    result = applied(scenario)
    assert tuple(result.profiles) == scenario.expect_profiles
    assert result.push is scenario.expect_push


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("kind-hashstack", ["kind"]),
        ("k3d-dev", ["kind"]),
        ("minikube", ["kind"]),
        ("my-kind-cluster", []),
        ("minikube-old", []),
        ("gke_acme_europe-west1_prod", []),
        ("arn:aws:eks:eu-west-1:1:cluster/kind-x", []),
    ],
)
def test_only_the_kind_profile_activates_by_itself(config, context, expected):
    for command in ("dev", "run", "render"):
        assert model.activated(config, context, command) == expected


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_every_deployment_runs_its_artifact(applied: ApplyFn, scenario: Scenario):
    result = applied(scenario)
    release = result.release["name"]
    deployments = result.objects("Deployment")
    for artifact, ref in result.built.items():
        deployment = deployments[f"{release}-{artifact}"]
        images = {c["name"]: c["image"] for c in containers(deployment)}
        assert images, deployment["metadata"]["name"]
        for container, image in images.items():
            assert image == ref, f"{artifact}/{container}: {image} != {ref}"
    # Nothing anywhere (test hooks included) still runs a service image Skaffold did not build.
    for obj in result.docs:
        for container in containers(obj) if obj["kind"] in ("Deployment", "Pod") else []:
            name = model.parse_reference(container["image"]).path.rsplit("/", 1)[-1]
            if name in result.built:
                assert container["image"] == result.built[name], obj["metadata"]["name"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_images_are_immutable_references(applied: ApplyFn, scenario: Scenario):
    result = applied(scenario)
    for artifact, ref in result.built.items():
        parsed = model.parse_reference(ref)
        if result.push:
            assert parsed.digest.startswith("sha256:"), f"{artifact}: pushed but not pinned"
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", parsed.tag), f"{artifact}: image-id tag"
        deployment = result.objects("Deployment")[f"{result.release['name']}-{artifact}"]
        for container in containers(deployment):
            assert container["imagePullPolicy"] == "IfNotPresent"


def test_numeric_tag_would_break_the_render_without_the_prefix(applied: ApplyFn):
    """Control for the tag policy's prefix: the same arguments with a bare all-digit tag fail."""
    result = applied(SCENARIOS[SCENARIO_IDS.index("registry-kind")])
    bare = [re.sub(r"(\.image\.tag=)git-", r"\1", arg) for arg in result.helm_args]
    assert bare != result.helm_args
    failed = helm(*template_args(result.release, bare), check=False)
    assert failed.returncode != 0
    assert "tag" in failed.stderr


def sync_dests(artifact: dict[str, Any]) -> set[str]:
    return {rule["dest"] for rule in artifact.get("sync", {}).get("manual", [])}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_dev_and_prod_differ_exactly_in_sync_reload_and_port_forward(
    applied: ApplyFn, scenario: Scenario
):
    result = applied(scenario)
    release = result.release["name"]
    configmaps = result.objects("ConfigMap")
    for artifact in result.artifacts:
        name = artifact["image"]
        deployment = result.objects("Deployment")[f"{release}-{name}"]
        spec = pod_spec(deployment)
        main = next(c for c in spec["containers"] if c["name"] == name)
        mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec["volumes"]}
        env = configmaps[f"{release}-{name}"]["data"]
        # The root filesystem stays read-only in every scenario.
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        if scenario.dev:
            dests = sync_dests(artifact)
            assert dests, f"{name}: no file sync in a dev scenario"
            for dest in dests:
                assert dest in mounts, f"{name}: sync dest {dest} is not a writable mount"
                assert "emptyDir" in volumes[mounts[dest]], f"{name}: {dest} not an emptyDir"
            assert env.get("GUNICORN_RELOAD") == "true", name
        else:
            # Only `skaffold dev` syncs: the custom builder's artifacts keep their rules in
            # `run -p prod,podman`, where nothing reads them.
            assert "sync" not in artifact or scenario.command != "dev", f"{name}: prod syncs"
            assert "/app" not in mounts, f"{name}: prod mounts over /app"
            assert "GUNICORN_RELOAD" not in env, f"{name}: prod reloads"
    if scenario.dev:
        assert result.pipeline.get("portForward"), "dev forwards hash and hello"
    else:
        assert not result.pipeline.get("portForward"), "prod forwards no port"
        assert not result.release.get("valuesFiles"), "prod takes no dev values"


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.dev], ids=lambda s: s.name)
def test_port_forwards_name_rendered_services(applied: ApplyFn, scenario: Scenario):
    result = applied(scenario)
    services = result.objects("Service")
    forwards = result.pipeline["portForward"]
    assert {f["resourceName"] for f in forwards} == {"hashstack-hash", "hashstack-hello"}
    assert len({f["localPort"] for f in forwards}) == len(forwards)
    for forward in forwards:
        assert forward["resourceType"] == "service"
        service = services[forward["resourceName"]]
        assert service["metadata"]["namespace"] == forward["namespace"]
        ports = service["spec"]["ports"]
        assert any(forward["port"] in (p["port"], p.get("name")) for p in ports), forward
        assert forward.get("address", "127.0.0.1") == "127.0.0.1"


def test_patches_are_path_stable(config):
    patches = [(p["name"], x) for p in config.get("profiles", []) for x in p.get("patches", [])]
    assert patches, "the prod profile removes the port forwards with a patch"
    for name, patch in patches:
        assert model.is_path_stable(patch["path"]), f"{name}: {patch['path']} uses an index"
        if "from" in patch:
            assert model.is_path_stable(patch["from"]), f"{name}: {patch['from']}"


def test_path_stability_check_catches_indexes():
    assert not model.is_path_stable("/build/artifacts/0/sync")
    assert not model.is_path_stable("/portForward/-")
    assert model.is_path_stable("/portForward")


def test_prod_is_the_base_without_dev(config):
    """prod restates build.artifacts and deploy.helm whole (no index patches): hold it to the
    base so the two cannot drift."""
    prod = next(p for p in config["profiles"] if p["name"] == "prod")
    base_artifacts = [
        {k: v for k, v in a.items() if k != "sync"} for a in config["build"]["artifacts"]
    ]
    assert prod["build"]["artifacts"] == base_artifacts
    base_helm = {k: v for k, v in config["deploy"]["helm"].items() if k != "releases"}
    assert {k: v for k, v in prod["deploy"]["helm"].items() if k != "releases"} == base_helm
    (base_release,) = config["deploy"]["helm"]["releases"]
    (prod_release,) = prod["deploy"]["helm"]["releases"]
    assert prod_release == {k: v for k, v in base_release.items() if k != "valuesFiles"}


def test_values_files_exist_and_stay_out_of_the_chart(config):
    for owner, release in all_releases(config):
        assert (ROOT / release["chartPath"] / "Chart.yaml").exists(), owner
        for values in release.get("valuesFiles", []):
            path = ROOT / values
            assert path.exists(), f"{owner}: {values}"
            assert not path.is_relative_to(ROOT / release["chartPath"]), values


def test_artifacts_build_existing_dockerfile_targets(config):
    for owner, artifact in all_artifacts(config):
        context = ROOT / artifact.get("context", ".")
        if "custom" in artifact:
            continue  # test_custom_artifacts_are_the_docker_ones_built_by_images_sh
        docker = artifact["docker"]
        dockerfile = context / docker.get("dockerfile", "Dockerfile")
        assert context.is_dir(), f"{owner}: {context}"
        assert dockerfile.exists(), f"{owner}: {dockerfile}"
        stages = model.parse_dockerfile(dockerfile)
        assert docker["target"] in stages, f"{owner}: no stage {docker['target']}"
        assert docker["target"] == artifact["image"], "one target per artifact, same name"


def test_dockerfile_model_follows_copies(tmp_path: Path):
    """Control: a file copied elsewhere, or a stage that does not inherit it, is seen as such."""
    (tmp_path / "Dockerfile").write_text(
        "FROM base AS build\nCOPY src /opt/src\nFROM base AS run\n"
        "COPY --from=build /opt/src /srv\nFROM base AS bare\n"
    )
    stages = model.parse_dockerfile(tmp_path / "Dockerfile")
    assert model.context_file_in_stage(stages, "run", "src/x.py") == {"/srv/x.py"}
    assert model.context_file_in_stage(stages, "bare", "src/x.py") == set()


def context_files(context: Path) -> list[str]:
    return sorted(
        p.relative_to(context).as_posix()
        for p in context.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_sync_rules_match_sources_and_land_where_the_image_keeps_them(config):
    for artifact in config["build"]["artifacts"]:
        context = ROOT / artifact["context"]
        dockerfile = context / artifact["docker"].get("dockerfile", "Dockerfile")
        stages = model.parse_dockerfile(dockerfile)
        target = artifact["docker"]["target"]
        sync = artifact["sync"]
        assert set(sync) == {"manual"}, "only manual sync rules are modelled"
        for rule in sync["manual"]:
            matched = [f for f in context_files(context) if model.doublestar_match(rule["src"], f)]
            assert matched, f"{artifact['image']}: {rule['src']} matches no file"
            assert any(f.endswith(".py") for f in matched)
            for rel in matched:
                # Skaffold only watches files that go into the build.
                assert not model.dockerignored(context / ".dockerignore", rel), rel
                dest = str(PurePosixPath(rule["dest"], rel.removeprefix(rule.get("strip", ""))))
                in_image = model.context_file_in_stage(stages, target, rel)
                assert dest in in_image, f"{rel} syncs to {dest}; the image has it at {in_image}"
            # The synced package is the one Python imports: dest is on the target's PYTHONPATH.
            pythonpath = stages[target].env.get("PYTHONPATH", "").split(":")
            assert rule["dest"] in pythonpath, f"{rule['dest']} not on PYTHONPATH {pythonpath}"


def test_sync_glob_and_dockerignore_models():
    assert model.doublestar_match("hashstack/**/*.py", "hashstack/hash.py")
    assert model.doublestar_match("hashstack/**/*.py", "hashstack/sub/x.py")
    assert not model.doublestar_match("hashstack/**/*.py", "hashstack/x.pyc")
    assert not model.doublestar_match("hashstack/**/*.py", "tests/hashstack/x.py")
    ignore = ROOT / "images" / ".dockerignore"
    assert model.dockerignored(ignore, "hashstack/__pycache__/x.cpython-311.pyc")
    assert model.dockerignored(ignore, "pyproject.toml")
    assert not model.dockerignored(ignore, "hashstack/hash.py")


@pytest.mark.parametrize(
    ("rel", "ignored"),
    [
        # `*` ignores every top-level entry, and moby ignores what is under an ignored
        # directory: only the `!` exceptions' own paths come back.
        ("hashstack.egg-info/PKG-INFO", True),
        ("hashstackfoo/x.py", True),
        ("tests/hashstack/x.py", True),
        ("hashstack/sub/x.py", False),
        ("hashstack/sub/__pycache__/x.cpython-311.pyc", True),
        ("requirements.txt", False),
        ("requirements.txt.orig", True),
    ],
)
def test_dockerignore_model_follows_moby(rel: str, ignored: bool):
    """The project's images/.dockerignore as skaffold (moby's patternmatcher) reads it."""
    assert model.dockerignored(ROOT / "images" / ".dockerignore", rel) is ignored


@pytest.mark.parametrize(
    ("lines", "rel", "ignored"),
    [
        # An ignored directory takes everything under it; a later exception for a file
        # inside brings that one file back (moby checks each pattern against the parents).
        (["build"], "build/a/b.txt", True),
        (["build", "!build/keep.txt"], "build/keep.txt", False),
        (["build", "!build/keep.txt"], "build/other.txt", True),
        # `**` spans any number of directories, `*` stays within one.
        (["**/*.log"], "a/b/c.log", True),
        (["*.log"], "a/c.log", False),
        (["docs/*.md"], "docs/sub/x.md", False),
        # Leading `/` and `./` are the root, a trailing `/` is cleaned away.
        (["/docs/"], "docs/x.md", True),
        (["./docs"], "docs/x.md", True),
        # The last matching pattern decides.
        (["*.md", "!README.md", "README.md"], "README.md", True),
    ],
)
def test_dockerignore_model_moby_cases(tmp_path: Path, lines: list[str], rel: str, ignored: bool):
    ignore = tmp_path / ".dockerignore"
    ignore.write_text("\n".join(["# a comment", *lines]) + "\n")
    assert model.dockerignored(ignore, rel) is ignored


def test_template_expansion_model():
    env = model.image_env("hash", "localhost:5000/hashstack/hash:git-1@" + "sha256:" + "a" * 64)
    assert model.expand("{{.IMAGE_DOMAIN_hash}}", env) == "localhost:5000"
    assert model.expand("{{ .IMAGE_REPO_NO_DOMAIN_hash }}", env) == "hashstack/hash"
    assert model.expand("{{.IMAGE_REPO_hash}}", env) == "localhost:5000/hashstack/hash"
    assert model.expand("{{.IMAGE_TAG_hash}}@{{.IMAGE_DIGEST_hash}}", env).endswith("a" * 64)
    assert model.expand("{{.IMAGE_TAG_hello}}", env) == "<no value>"
    with pytest.raises(NotImplementedError):
        model.expand('{{ default "x" .Y }}', env)
    side_loaded = model.image_env("hello", "hello:" + "b" * 64)
    assert side_loaded["IMAGE_DOMAIN_hello"] == ""
    assert side_loaded["IMAGE_DIGEST_hello"] == ""


def custom_artifacts(config: dict[str, Any]) -> list[dict[str, Any]]:
    (podman,) = [p for p in config["profiles"] if p["name"] == "podman"]
    return list(podman["build"]["artifacts"])


def test_custom_artifacts_are_the_docker_ones_built_by_images_sh(config):
    """The podman profile builds the base's artifacts, context and sync rules unchanged, each
    with `ci/images.sh skaffold <its Dockerfile target>` run from the context (skaffold runs
    the command with `sh -c` in the artifact's context)."""
    base = {a["image"]: a for a in config["build"]["artifacts"]}
    custom = custom_artifacts(config)
    assert [a["image"] for a in custom] == list(base)
    for artifact in custom:
        docker = base[artifact["image"]]
        assert {k: v for k, v in artifact.items() if k != "custom"} == {
            k: v for k, v in docker.items() if k != "docker"
        }
        context = ROOT / artifact["context"]
        program, *args = shlex.split(artifact["custom"]["buildCommand"])
        assert (context / program).resolve() == ROOT / "ci" / "images.sh"
        assert args == ["skaffold", docker["docker"]["target"]]
        assert docker["docker"].get("dockerfile", "Dockerfile") == "Dockerfile"


def test_custom_dependencies_are_what_the_build_reads(config):
    """Skaffold rebuilds on a change to a dependency and watches nothing else: the
    dependencies are the context's files that go into the build (.dockerignore applied), the
    Dockerfile and .dockerignore themselves, and pyproject.toml (the image's version label)."""
    for artifact in custom_artifacts(config):
        context = ROOT / artifact["context"]
        sent = {
            f
            for f in context_files(context)
            if not model.dockerignored(context / ".dockerignore", f)
        }
        expected = sent | {"Dockerfile", ".dockerignore", "pyproject.toml"}
        found = model.custom_dependencies(context, artifact["custom"]["dependencies"])
        assert found == expected, f"{artifact['image']}: {sorted(found ^ expected)}"
        # Every synced file is a dependency (skaffold syncs only what it watches).
        for rule in artifact["sync"]["manual"]:
            synced = {f for f in context_files(context) if model.doublestar_match(rule["src"], f)}
            assert synced, rule
            assert synced <= found, rule


def test_custom_dependencies_model_drops_ignored_files(tmp_path: Path):
    """Control: a bytecode file and a __pycache__ directory inside a dependency stay out."""
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    for rel in ("pkg/a.py", "pkg/a.pyc", "pkg/__pycache__/a.cpython-311.pyc", "other.txt"):
        (tmp_path / rel).write_text("x")
    deps = {"paths": ["pkg"], "ignore": ["**/__pycache__", "**/*.py[cod]"]}
    assert model.custom_dependencies(tmp_path, deps) == {"pkg/a.py"}


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.dev], ids=lambda s: s.name)
def test_a_replaced_persistence_pod_serves_until_an_idle_hash_has_moved_on(
    applied: ApplyFn, scenario: Scenario
):
    """hash keeps persistence's pod addresses (hashstack.persistence_client) and, with no
    traffic, looks them up again only when its readiness probe calls persistence: a replaced
    persistence pod must keep serving (preStop sleep) for a probe period plus the addresses'
    freshness, or the first call after a rollout goes to a deleted pod and times out. (The dev
    values; the chart's default, 5 s, serves a hash under load, which looks up every second.)"""
    from hashstack.persistence_client import ADDRESSES_FRESH_FOR

    result = applied(scenario)
    release = result.release["name"]
    hash_main = next(
        c
        for c in containers(result.objects("Deployment")[f"{release}-hash"])
        if c["name"] == "hash"
    )
    persistence = result.objects("Deployment")[f"{release}-persistence"]
    (main,) = [c for c in pod_spec(persistence)["containers"] if c["name"] == "persistence"]
    pause = main.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pause >= hash_main["readinessProbe"]["periodSeconds"] + ADDRESSES_FRESH_FOR
    grace = pod_spec(persistence).get("terminationGracePeriodSeconds", 30)
    assert pause < grace
