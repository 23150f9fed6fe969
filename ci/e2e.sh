#!/usr/bin/env bash
# `make e2e` and the workflow's e2e job: the chart on a real cluster.
#   1. a cluster: kind with a local registry (ci/kind/cluster.sh) when kind and docker or
#      podman are there, otherwise the current kube context; none at all: say so, exit 1;
#   2. the three images built and pushed where the nodes pull from (ci/images.sh);
#   3. ct lint and ct install --upgrade (ci/ct.yaml) when ct is installed (required on CI);
#   4. the pytest cluster suite (tests/cluster), which fails rather than skips here;
#   5. the release itself: helm upgrade --install, then helm test. It stays up to explore.
# Environment: E2E_CLUSTER=auto|kind|current, KIND_* (ci/kind/cluster.sh), REGISTRY (push
# target for the current context, default localhost:5000), TAG (ci/images.sh tag), ENGINE
# and OFFLINE (ci/images.sh), RELEASE, NAMESPACE, E2E_SKIP_IMAGES=1 (images already pushed),
# E2E_CT=auto|1|0, CT_TARGET_BRANCH.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

MODE="${E2E_CLUSTER:-auto}"
RELEASE="${RELEASE:-hashstack}"
NAMESPACE="${NAMESPACE:-hashstack}"
HELM="${HELM:-helm}"
TAG="${TAG:-$(ci/images.sh tag)}"
export TAG HELM

log() { echo "e2e: $*" >&2; }
die() { log "$*"; exit 1; }

engine_answers() {
  { command -v docker >/dev/null && docker info >/dev/null 2>&1; } \
    || { command -v podman >/dev/null && podman info >/dev/null 2>&1; }
}

# Sets KUBECONFIG and PUSH_REGISTRY for the cluster this run uses.
choose_cluster() {
  if [ "$MODE" = auto ]; then
    if command -v kind >/dev/null && engine_answers; then MODE=kind; else MODE=current; fi
  fi
  case "$MODE" in
    kind)
      command -v kind >/dev/null || die "E2E_CLUSTER=kind but kind is not on PATH"
      ci/kind/cluster.sh up
      export KUBECONFIG="${KIND_KUBECONFIG:-$HASHSTACK_CACHE/kind/kubeconfig}"
      PUSH_REGISTRY="localhost:${KIND_REGISTRY_PORT:-5000}"
      ;;
    current)
      if ! kubectl get --raw /version --request-timeout=5s >/dev/null 2>&1; then
        die "no reachable cluster: kind with docker or podman is not available here, and the" \
          "current kube context ($(kubectl config current-context 2>/dev/null || echo none))" \
          "does not answer. Install kind and docker/podman, or point KUBECONFIG at a cluster."
      fi
      PUSH_REGISTRY="${REGISTRY:-localhost:5000}"
      ;;
    *) die "E2E_CLUSTER must be auto, kind or current, not '$MODE'" ;;
  esac
  log "cluster: $MODE ($(kubectl config current-context)), images from $PUSH_REGISTRY"
}

# What went wrong, in the job log, when a step fails.
diagnose() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "${PUSH_REGISTRY:-}" ]; then
    log "failed ($rc); cluster state:"
    kubectl get nodes,pods,svc,pvc,events -A -o wide --request-timeout=10s >&2 || true
  fi
  return "$rc"
}

# helm --set arguments that point the chart at the pushed images (filled in by main).
set_args=()

main() {
  ci/install-deps.sh
  ci/install-tools.sh
  choose_cluster
  trap diagnose EXIT

  if [ "${E2E_SKIP_IMAGES:-0}" != 1 ]; then
    # kind runs on docker when docker answers: build with it too (ci/images.sh's default is podman).
    if [ -z "${ENGINE:-}" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
      export ENGINE=docker
    fi
    ci/images.sh build
    ci/images.sh push "$PUSH_REGISTRY"
  fi
  set_args=(--set "global.imageRegistry=$PUSH_REGISTRY")
  for service in hello persistence hash; do
    set_args+=(--set "$service.image.tag=$TAG")
  done

  run_ct

  log "cluster suite"
  HASHSTACK_REQUIRE_CLUSTER=1 HASHSTACK_E2E_REGISTRY="$PUSH_REGISTRY" \
    HASHSTACK_E2E_TAG="$TAG" ci/test.sh -m cluster tests/cluster

  log "release $RELEASE in namespace $NAMESPACE"
  "$HELM" upgrade --install "$RELEASE" charts/hashstack --namespace "$NAMESPACE" \
    --create-namespace --wait --timeout 10m "${set_args[@]}"
  "$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m
  log "done; try: kubectl get --raw /api/v1/namespaces/$NAMESPACE/services/$RELEASE-hash:http/proxy/"
}

run_ct() {
  local want="${E2E_CT:-auto}"
  if ! command -v ct >/dev/null; then
    if [ "$want" = 1 ] || { [ "$want" = auto ] && [ -n "${CI:-}" ]; }; then
      die "ct (chart-testing) is not on PATH"
    fi
    log "ct not installed: skipping ct lint / ct install (https://github.com/helm/chart-testing)"
    return 0
  fi
  if [ "$want" = 0 ]; then
    return 0
  fi
  ct lint --config ci/ct.yaml
  local upgrade=(--upgrade)
  local target="origin/${CT_TARGET_BRANCH:-main}"
  if ! git rev-parse --verify --quiet "$target" >/dev/null; then
    if [ -n "${CI:-}" ]; then
      die "ct install --upgrade needs $target (checkout with fetch-depth: 0)"
    fi
    log "no $target here: ct install without the upgrade test"
    upgrade=()
  fi
  ct install --config ci/ct.yaml "${upgrade[@]}" --helm-extra-set-args "${set_args[*]}"
}

main "$@"
