"""What Skaffold does with skaffold.yaml, for the parts this project uses, without a skaffold
binary: profile activation and overlay, JSON patches (jsonpatch), the image values it derives
from a built reference, the `--set`/`-f` arguments it gives helm, what a Dockerfile target holds
(dockerfile-parse reads the file), which files a sync rule names (pathspec) and which ones a
.dockerignore or a custom artifact's dependencies leave in (moby's pattern matcher, restated).

Each function follows the behaviour of Skaffold v2 (schema skaffold/v4beta14); anything this
model does not know raises, so a new kind of field in skaffold.yaml cannot slip through.
"""

from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jsonpatch
import jsonpointer
import pathspec
from dockerfile_parse import DockerfileParser

# --- profiles --------------------------------------------------------------------------------

# Pipeline fields that are pointers or slices in Skaffold's Go types: a profile that sets one
# replaces it whole. Every other mapping is a struct, overlaid field by field.
REPLACED_WHOLE = {
    ("build", "artifacts"),
    ("build", "insecureRegistries"),
    ("build", "tagPolicy", "gitCommit"),
    ("build", "tagPolicy", "inputDigest"),
    ("build", "tagPolicy", "sha256"),
    ("build", "tagPolicy", "envTemplate"),
    ("build", "tagPolicy", "dateTime"),
    ("build", "tagPolicy", "customTemplate"),
    ("deploy", "helm"),
    ("deploy", "kubectl"),
    ("deploy", "docker"),
    ("deploy", "kpt"),
    ("deploy", "cloudrun"),
    ("portForward",),
}
# build's builder is a one-of: the profile's choice replaces the base's, whichever it was.
BUILDERS = ("local", "googleCloudBuild", "cluster")
PIPELINE_KEYS = {"build", "deploy", "portForward", "manifests", "test", "verify"}


def _overlay(base: Any, over: Any, path: tuple[str, ...]) -> Any:
    if path in REPLACED_WHOLE or not isinstance(over, dict):
        # Zero values (empty list, "", false, 0) leave the base as it was.
        return base if not over else copy.deepcopy(over)
    merged = dict(base or {})
    if path == ("build",) and any(b in over for b in BUILDERS):
        for builder in BUILDERS:
            merged.pop(builder, None)
    for key, value in over.items():
        if path == ("build",) and key in BUILDERS:
            merged[key] = copy.deepcopy(value)
        else:
            merged[key] = _overlay(merged.get(key), value, (*path, key))
    return merged


def is_path_stable(path: str) -> bool:
    """No array index and no `-` (append): the path names the same thing whatever the order."""
    return not any(seg.isdigit() or seg == "-" for seg in jsonpointer.JsonPointer(path).parts)


def _apply_patch(config: dict[str, Any], patch: dict[str, Any]) -> None:
    # Skaffold's profile patches are RFC 6902 operations whose op defaults to "replace".
    jsonpatch.apply_patch(config, [{"op": "replace", **patch}], in_place=True)


def regex_equal(expected: str, actual: str) -> bool:
    """Skaffold's activation match: `!` negates; otherwise equal, or an unanchored regex search."""
    if expected.startswith("!"):
        return not regex_equal(expected[1:], actual)
    if expected == actual:
        return True
    try:
        return re.search(expected, actual) is not None
    except re.error:
        return False


def activated(config: dict[str, Any], kube_context: str, command: str) -> list[str]:
    """Names of the profiles that activate by themselves (kubeContext and command conditions)."""
    names = []
    for profile in config.get("profiles", []):
        conds = profile.get("activation", [])
        unsupported = {k for c in conds for k in c} - {"kubeContext", "command"}
        if unsupported:
            raise NotImplementedError(f"activation on {unsupported} is not modelled")
        hits = [
            regex_equal(c.get("kubeContext", "") or ".*", kube_context)
            and regex_equal(c.get("command", "") or ".*", command)
            for c in conds
        ]
        matched = all(hits) if profile.get("requiresAllActivations") else any(hits)
        if conds and matched:
            names.append(profile["name"])
    return names


def effective_config(
    config: dict[str, Any], kube_context: str, command: str, named: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[str]]:
    """The pipeline Skaffold runs: auto-activated profiles first, then the named ones; a
    named `-NAME` switches an auto-activated profile off."""
    order = activated(config, kube_context, command)
    for name in named:
        if name.startswith("-"):
            order = [n for n in order if n != name[1:]]
        elif name not in order:
            order.append(name)
    by_name = {p["name"]: p for p in config.get("profiles", [])}
    pipeline = {k: copy.deepcopy(v) for k, v in config.items() if k in PIPELINE_KEYS}
    for name in order:
        profile = by_name[name]
        for key in PIPELINE_KEYS & profile.keys():
            pipeline[key] = _overlay(pipeline.get(key), profile[key], (key,))
        for patch in profile.get("patches", []):
            _apply_patch(pipeline, patch)
    return pipeline, order


# --- image references and templates ----------------------------------------------------------

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:({_DOMAIN})/)?({_COMPONENT}(?:/{_COMPONENT})*)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^{_NAME}(?::({_TAG}))?(?:@({_DIGEST}))?$")


@dataclass(frozen=True)
class Reference:
    """distribution/reference.Parse (not the normalizing parser): the first path component is
    the domain whenever there is a `/`, whatever it looks like."""

    domain: str
    path: str
    tag: str
    digest: str

    @property
    def base_name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path


def parse_reference(ref: str) -> Reference:
    match = _REFERENCE.match(ref)
    if not match:
        raise ValueError(f"not an image reference: {ref!r}")
    domain, path, tag, digest = (g or "" for g in match.groups())
    return Reference(domain, path, tag, digest)


def sanitize(name: str) -> str:
    """Skaffold's template-name escaping of an artifact's image name."""
    return re.sub(r"[./:-]", "_", name)


def image_env(image_name: str, built: str) -> dict[str, str]:
    """The template values Skaffold derives from one built reference (helm/args.go)."""
    ref = parse_reference(built)
    env = {
        "IMAGE_NAME": image_name,
        "DIGEST": built,
        "IMAGE_REPO": ref.base_name,
        "IMAGE_TAG": ref.tag,
        "IMAGE_DIGEST": ref.digest,
        "IMAGE_DOMAIN": ref.domain,
        "IMAGE_REPO_NO_DOMAIN": ref.base_name.removeprefix(ref.domain + "/"),
        "IMAGE_FULLY_QUALIFIED": built,
    }
    suffix = sanitize(image_name)
    return {f"{key}_{suffix}": value for key, value in env.items()}


_TEMPLATE_ACTION = re.compile(r"{{(.*?)}}")
_FIELD = re.compile(r"^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


def expand(template: str, env: dict[str, str]) -> str:
    """Go text/template for `{{.NAME}}` actions only; a missing key prints `<no value>` as Go
    does. Any other action raises: extend the model before using it in skaffold.yaml."""

    def action(match: re.Match[str]) -> str:
        field_match = _FIELD.match(match.group(1))
        if not field_match:
            raise NotImplementedError(f"template action not modelled: {match.group(0)}")
        return env.get(field_match.group(1), "<no value>")

    return _TEMPLATE_ACTION.sub(action, template)


def apply_default_repo(default_repo: str | None, image: str) -> str:
    """docker.SubstituteDefaultRepoIntoImage for registries without multi-level repos."""
    if not default_repo or image.startswith(default_repo):
        return image
    return f"{default_repo}/{re.sub(r'[/._:@]', '_', image)}"


def helm_override_args(release: dict[str, Any], env: dict[str, str]) -> list[str]:
    """helm.ConstructOverrideArgs: setValues, then setValueTemplates (expanded, a trailing `@`
    trimmed), then the values files, each list sorted as Skaffold sorts it."""
    if release.get("setFiles"):
        raise NotImplementedError("setFiles is not modelled")
    args: list[str] = []
    for key in sorted(release.get("setValues", {})):
        args += ["--set", f"{key}={release['setValues'][key]}"]
    for key in sorted(release.get("setValueTemplates", {})):
        value = expand(str(release["setValueTemplates"][key]), env).removesuffix("@")
        args += ["--set", f"{expand(key, env)}={value}"]
    for values_file in release.get("valuesFiles", []):
        args += ["-f", expand(values_file, env)]
    return args


# --- Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


def _env_pairs(rest: str) -> dict[str, str]:
    return dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S+)", rest))


def parse_dockerfile(path: Path) -> dict[str, Stage]:
    """Stages by name (unnamed stages by index) with their COPY, ENV and WORKDIR lines."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    # dockerfile-parse joins continued lines and drops comments; env_replace=False keeps $ARGs.
    parser = DockerfileParser(str(path), env_replace=False)
    for entry in parser.structure:
        instr, rest = entry["instruction"].upper(), entry["value"]
        if instr == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            base = stages.get(words[0])
            current = Stage(name=name, base=words[0])
            if base:
                current.env = dict(base.env)
                current.workdir = base.workdir
            stages[name] = current
        elif current is None:
            continue
        elif instr == "COPY":
            words = rest.split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            current.copies.append((source, paths[:-1], paths[-1]))
        elif instr == "ENV":
            current.env.update({k: v.strip('"') for k, v in _env_pairs(rest).items()})
        elif instr == "WORKDIR":
            current.workdir = str(PurePosixPath(current.workdir, rest.strip()))
    return stages


def context_file_in_stage(stages: dict[str, Stage], stage: str, rel: str) -> set[str]:
    """Where the build context's file `rel` ends up in `stage`'s filesystem (COPY from the
    context and COPY --from other stages, followed through FROM <stage>)."""
    here = stages[stage]
    found = context_file_in_stage(stages, here.base, rel) if here.base in stages else set()
    for source, srcs, dest in here.copies:
        if source is None:
            candidates = {"/" + rel}
            roots = {"/" + s.strip("./").rstrip("/") for s in srcs}
        elif source in stages:
            candidates = context_file_in_stage(stages, source, rel)
            roots = {s.rstrip("/") or "/" for s in srcs}
        else:
            continue
        for where in candidates:
            for root in roots:
                if root == "/" or where == root or where.startswith(root + "/"):
                    sub = where[len(root) :].lstrip("/") if root != "/" else where.lstrip("/")
                    found.add(str(PurePosixPath(dest, sub)) if sub else dest.rstrip("/"))
    return found


# --- file patterns ---------------------------------------------------------------------------


def _anchored(pattern: str) -> str:
    """A pattern matched from the context's root (gitwildmatch matches a bare name anywhere)."""
    negate = pattern.startswith("!")
    body = pattern.lstrip("!").strip()
    return ("!" if negate else "") + "/" + body.lstrip("/")


def doublestar_match(pattern: str, rel: str) -> bool:
    """doublestar.PathMatch, as Skaffold matches a sync rule's src against a file's path
    relative to the artifact's context: `*` within one directory, `**/` across any number."""
    return pathspec.PathSpec.from_lines("gitignore", [_anchored(pattern)]).match_file(rel)


@dataclass(frozen=True)
class _MobyPattern:
    regex: re.Pattern[str]
    exclusion: bool


def _moby_pattern(line: str) -> _MobyPattern | None:
    """One line of an ignore file as moby's ignorefile.ReadAll + patternmatcher compile it:
    `!` is an exception, the rest is path.Clean'ed with a leading `/` dropped; `*` and `?`
    stay within one directory, `**` spans any number; a blank line or a comment is nothing."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    exclusion = line.startswith("!")
    body = line[1:].strip() if exclusion else line
    body = posixpath.normpath(body) if body else body
    if len(body) > 1 and body.startswith("/"):
        body = body[1:]
    regex, i = "^", 0
    while i < len(body):
        ch = body[i]
        if body.startswith("**", i):
            i += 2
            if body.startswith("/", i):
                i += 1
            regex += ".*" if i >= len(body) else "(.*/)?"
            continue
        if ch == "*":
            regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch == "\\" and i + 1 < len(body):
            i += 1
            regex += re.escape(body[i])
        elif ch in "[]^-":
            regex += ch  # character classes pass through, as in Go's filepath.Match
        else:
            regex += re.escape(ch)
        i += 1
    return _MobyPattern(re.compile(regex + "$"), exclusion)


def dockerignored(ignore_file: Path, rel: str) -> bool:
    """moby's PatternMatcher.MatchesOrParentMatches, which the builds and skaffold's dependency
    walk use: each pattern in turn, tried on the path and on each of its parent directories
    (so an ignored directory ignores everything under it); an exception (`!`) is only tried
    while the path is ignored, an inclusion only while it is not; the last match decides."""
    if not ignore_file.exists():
        return False
    patterns = [p for line in ignore_file.read_text().splitlines() if (p := _moby_pattern(line))]
    return moby_matches(patterns, rel)


def moby_matches(patterns: list[_MobyPattern], rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    matched = False
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue
        if pattern.regex.match(rel) or any(pattern.regex.match(d) for d in parents):
            matched = not pattern.exclusion
    return matched


def custom_dependencies(context: Path, dependencies: dict[str, Any]) -> set[str]:
    """The files a custom artifact's `dependencies.paths`/`ignore` name (skaffold's
    docker.WalkWorkspace): each path a glob from the context, a directory taken whole, minus
    what the ignore patterns (moby's matcher) take out. Paths are relative to the context."""
    unsupported = set(dependencies) - {"paths", "ignore"}
    if unsupported:
        raise NotImplementedError(f"custom dependencies {unsupported} are not modelled")
    ignore = [p for line in dependencies.get("ignore", []) if (p := _moby_pattern(line))]
    found: set[str] = set()
    for pattern in dependencies.get("paths", []):
        for hit in sorted(context.glob(pattern)):
            files = [hit] if hit.is_file() else [f for f in hit.rglob("*") if f.is_file()]
            found |= {f.relative_to(context).as_posix() for f in files}
    return {rel for rel in found if not moby_matches(ignore, rel)}
