#!/usr/bin/env bash
# skaffold.yaml checked by skaffold itself, where a skaffold binary exists (the GitHub workflow;
# tests/skaffold checks the same file without one): for the default pipeline and every profile
# (registry, prod, podman: the custom builder, and prod,podman),
#   skaffold diagnose --yaml-only   the effective configuration (profiles applied)
#   skaffold build --dry-run        the tags each artifact gets, without building
#   skaffold render --offline --digest-source=tag   the chart rendered with skaffold's own image
#                                   values, without building, pushing or a cluster
# Outputs go to $SKAFFOLD_CHECK_OUT (default .cache/skaffold-check/<name>.{config.yaml,
# build.json,render.yaml}); tests/skaffold/test_skaffold_binary.py holds them to the model.
#
# A throwaway kubeconfig names the context kind-skaffold-check (never contacted), so the kind
# profile activates as on a developer's kind cluster and the user's kubeconfig is left alone.
#
# Environment: SKAFFOLD (binary, default skaffold), REQUIRE_SKAFFOLD=1 (fail when it is missing
#   instead of skipping), SKAFFOLD_CHECK_OUT.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

SKAFFOLD=${SKAFFOLD:-skaffold}
OUT=${SKAFFOLD_CHECK_OUT:-$HASHSTACK_CACHE/skaffold-check}

if ! command -v "$SKAFFOLD" >/dev/null 2>&1; then
  if [ "${REQUIRE_SKAFFOLD:-0}" = 1 ]; then
    echo "skaffold-check: skaffold is not installed and REQUIRE_SKAFFOLD=1" >&2
    exit 1
  fi
  echo "skaffold-check: skipped: no skaffold binary (tests/skaffold checks skaffold.yaml without it)" >&2
  exit 0
fi
command -v helm >/dev/null 2>&1 || {
  echo "skaffold-check: skaffold renders with helm, which is missing: run ci/install-tools.sh" >&2
  exit 1
}

mkdir -p "$OUT"
KUBECONFIG="$OUT/kubeconfig"
export KUBECONFIG
cat >"$KUBECONFIG" <<'KUBECONFIG'
apiVersion: v1
kind: Config
clusters:
  - name: skaffold-check
    cluster:
      server: https://127.0.0.1:1
contexts:
  - name: kind-skaffold-check
    context:
      cluster: skaffold-check
      user: skaffold-check
users:
  - name: skaffold-check
    user: {}
current-context: kind-skaffold-check
KUBECONFIG

"$SKAFFOLD" version
# check NAME PROFILES DEFAULT_REPO ("" for none); diagnose takes no --default-repo.
check() {
  local name=$1 profile=() repo=()
  [ -z "$2" ] || profile=(--profile "$2")
  [ -z "$3" ] || repo=(--default-repo "$3")
  echo "skaffold-check: $name: skaffold diagnose + build --dry-run + render --offline" \
    "${profile[*]} ${repo[*]}" >&2
  "$SKAFFOLD" diagnose --yaml-only "${profile[@]}" >"$OUT/$name.config.yaml"
  "$SKAFFOLD" build --dry-run --quiet "${profile[@]}" "${repo[@]}" \
    --file-output "$OUT/$name.build.json" >/dev/null
  "$SKAFFOLD" render --offline --digest-source=tag "${profile[@]}" "${repo[@]}" \
    --output "$OUT/$name.render.yaml"
}
# Keep in step with CHECKS in tests/skaffold/test_skaffold_binary.py.
check default "" ""
check registry registry localhost:5000/hashstack
check prod prod registry.hashstack.test/hashstack
check podman podman ""
check prod-podman prod,podman registry.hashstack.test/hashstack
echo "skaffold-check: ok ($OUT)" >&2
