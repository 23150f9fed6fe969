#!/usr/bin/env bash
# `make e2e` and the workflow's e2e job: the chart on a real cluster.
#   1. a cluster: kind with a local registry (ci/kind/cluster.sh) when kind and docker or
#      podman are there, otherwise the current kube context; none at all: say so, exit 1;
#   2. the three images built and pushed where the nodes pull from (ci/images.sh), under
#      $TAG and $TAG-next (the cluster suite upgrades to the second under load);
#   3. ct lint and ct install --upgrade (ci/ct.yaml) when ct is installed (required on CI);
#   4. the pytest cluster suite ($E2E_TESTS), which fails rather than skips here;
#   5. the release itself: helm upgrade --install, then helm test. It stays up to explore.
# Only hello, persistence and hash are pointed at the pushed images
# (<service>.image.registry/repository/tag): etcd, the registry and its proxy keep theirs.
# Environment: E2E_CLUSTER=auto|kind|current, KIND_* (ci/kind/cluster.sh), REGISTRY (push
# target for the current context, default localhost:5000), PULL_REGISTRY (the name the nodes
# pull that registry by, default REGISTRY), TAG (ci/images.sh tag), ENGINE and OFFLINE
# (ci/images.sh), RELEASE, NAMESPACE, E2E_SKIP_IMAGES=1 (both tags already pushed),
# E2E_CT=auto|1|0, CT_TARGET_BRANCH, E2E_TESTS (pytest paths, default tests/cluster),
# E2E_MARK (pytest -m, default cluster: everything; the workflow splits "cluster and not ha"
# from the multi-node job's "ha"), E2E_RELEASE=0 (skip step 5),
# HASHSTACK_E2E_MAX_FAILED (failed calls allowed during an upgrade or drain, default 0),
# DRY_RUN=1 (print the commands instead of running them; no cluster needed).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

MODE="${E2E_CLUSTER:-auto}"
RELEASE="${RELEASE:-hashstack}"
NAMESPACE="${NAMESPACE:-hashstack}"
HELM="${HELM:-helm}"
TAG="${TAG:-$(ci/images.sh tag)}"
NEXT_TAG="$TAG-next"
E2E_TESTS="${E2E_TESTS:-tests/cluster}"
E2E_MARK="${E2E_MARK:-cluster}"
DRY_RUN="${DRY_RUN:-0}"
SERVICES=(hello persistence hash) # the images built, pushed and deployed here
export TAG HELM


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
      [ "$DRY_RUN" = 1 ] || command -v kind >/dev/null ||
        die "E2E_CLUSTER=kind but kind is not on PATH"
      run ci/kind/cluster.sh up
      export KUBECONFIG="${KIND_KUBECONFIG:-$HASHSTACK_CACHE/kind/kubeconfig}"
      # kind's registry container; localhost:5000 on the nodes is the chart's node proxy.
      PUSH_REGISTRY="localhost:${KIND_REGISTRY_PORT:-5001}"
      PULL_REGISTRY="$PUSH_REGISTRY"
      ;;
    current)
      if [ "$DRY_RUN" != 1 ] &&
        ! kubectl get --raw /version --request-timeout=5s >/dev/null 2>&1; then
        die "no reachable cluster: kind with docker or podman is not available here, and the" \
          "current kube context ($(kubectl config current-context 2>/dev/null || echo none))" \
          "does not answer. Install kind and docker/podman, or point KUBECONFIG at a cluster."
      fi
      PUSH_REGISTRY="${REGISTRY:-localhost:5000}"
      PULL_REGISTRY="${PULL_REGISTRY:-$PUSH_REGISTRY}"
      ;;
    *) die "E2E_CLUSTER must be auto, kind or current, not '$MODE'" ;;
  esac
  log "cluster: $MODE ($(kubectl config current-context 2>/dev/null || echo none))," \
    "images pushed to $PUSH_REGISTRY, pulled as $PULL_REGISTRY"
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

# helm --set arguments that point the three services at the pushed images (filled in by main).
set_args=()

# Prints one `--set` argument per line for <service>.image.registry/repository/tag.
image_set_args() {
  local tag=$1 service
  for service in "${SERVICES[@]}"; do
    printf '%s\n' --set "$service.image.registry=$PULL_REGISTRY" \
      --set "$service.image.repository=hashstack/$service" --set-string "$service.image.tag=$tag"
  done
}

push_images() {
  # kind runs on docker when docker answers: build with it too (ci/images.sh's default is podman).
  if [ -z "${ENGINE:-}" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    export ENGINE=docker
  fi
  local service tag
  run env TAG="$TAG" ci/images.sh build
  # The same images under a second tag, for the upgrade test: tagged, not built again.
  for service in "${SERVICES[@]}"; do
    run "${ENGINE:-podman}" tag "hashstack/$service:$TAG" "hashstack/$service:$NEXT_TAG"
  done
  for tag in "$TAG" "$NEXT_TAG"; do
    run env TAG="$tag" ci/images.sh push "$PUSH_REGISTRY"
  done
}

main() {
  run ci/install-deps.sh
  run ci/install-tools.sh
  choose_cluster
  [ "$DRY_RUN" = 1 ] || trap diagnose EXIT

  if [ "${E2E_SKIP_IMAGES:-0}" != 1 ]; then
    push_images
  fi
  mapfile -t set_args < <(image_set_args "$TAG")

  run_ct

  log "cluster suite: $E2E_TESTS -m '$E2E_MARK'"
  # shellcheck disable=SC2086 # E2E_TESTS is a list of paths
  # One process: the scenarios share one cluster and one release name.
  run env HASHSTACK_REQUIRE_CLUSTER=1 HASHSTACK_E2E_REGISTRY="$PULL_REGISTRY" \
    HASHSTACK_E2E_TAG="$TAG" HASHSTACK_E2E_NEXT_TAG="$NEXT_TAG" PYTEST_WORKERS=0 \
    ci/test.sh -m "$E2E_MARK" -s $E2E_TESTS

  [ "${E2E_RELEASE:-1}" != 0 ] || return 0
  log "release $RELEASE in namespace $NAMESPACE"
  run "$HELM" upgrade --install "$RELEASE" charts/hashstack --namespace "$NAMESPACE" \
    --create-namespace --wait --timeout 10m "${set_args[@]}"
  run "$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m
  local hash_service hash_port
  need_pyyaml
  hash_service=$(python3 ci/rendered.py --release "$RELEASE" name Service hash)
  hash_port=$(python3 ci/rendered.py --release "$RELEASE" service-port-ref hash)
  log "done; try: kubectl get --raw /api/v1/namespaces/$NAMESPACE/services/$hash_service:$hash_port/proxy/"
}

run_ct() {
  local want="${E2E_CT:-auto}"
  if [ "$DRY_RUN" != 1 ] && ! command -v ct >/dev/null; then
    if [ "$want" = 1 ] || { [ "$want" = auto ] && [ -n "${CI:-}" ]; }; then
      die "ct (chart-testing) is not on PATH"
    fi
    log "ct not installed: skipping ct lint / ct install (https://github.com/helm/chart-testing)"
    return 0
  fi
  if [ "$want" = 0 ]; then
    return 0
  fi
  run ct lint --config ci/ct.yaml
  local upgrade=(--upgrade)
  local target="origin/${CT_TARGET_BRANCH:-main}"
  if [ "$DRY_RUN" != 1 ] && ! git rev-parse --verify --quiet "$target" >/dev/null; then
    if [ -n "${CI:-}" ]; then
      die "ct install --upgrade needs $target (checkout with fetch-depth: 0)"
    fi
    log "no $target here: ct install without the upgrade test"
    upgrade=()
  fi
  run ct install --config ci/ct.yaml "${upgrade[@]}" \
    --helm-extra-set-args "${set_args[*]} --set metrics.serviceMonitor.enabled=false"
}

main "$@"
