#!/usr/bin/env bash
# The seed's registry flow: the images go to the chart's own registry (<release>-registry),
# which every node pulls as localhost:5000 through the <release>-registry-proxy DaemonSet.
# Skaffold builds and pushes every artifact before it deploys anything, so the registry has to
# run before the first build: two steps.
#   1. When the release does not exist yet: helm upgrade --install the chart with hello,
#      persistence and hash disabled, so that the registry and the node proxy come up.
#   2. Forward the registry to 127.0.0.1:$REGISTRY_PORT, then build, push and deploy:
#        run   skaffold run -p registry --default-repo=localhost:5000/hashstack [ARGS]
#        dev   skaffold dev -p registry --default-repo=localhost:5000/hashstack [ARGS]
#        helm  ci/images.sh build and push (tag: the git revision), then helm upgrade --install
#              with those tags, pinned by digest (no skaffold needed; `make deploy` uses it)
#
#   ci/registry-flow.sh run|dev|helm [SKAFFOLD_ARGS...]
#
# The engine that pushes (docker, or podman for `helm`) must reach 127.0.0.1 of this machine.
# A namespace that enforces Pod Security "baseline" or "restricted" rejects the proxy's
# hostPort: label it pod-security.kubernetes.io/enforce=privileged first.
#
# Environment: RELEASE, NAMESPACE (default hashstack; skaffold.yaml fixes both to hashstack),
#   REGISTRY_PORT (local end of the forward, default 5000; skaffold needs 5000 because it deploys
#   the very name it pushed), SKAFFOLD (binary), DRY_RUN=1 (print the commands, run none).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -gt 0 ] || usage
MODE=$1
shift
RELEASE=${RELEASE:-hashstack}
NAMESPACE=${NAMESPACE:-hashstack}
SKAFFOLD=${SKAFFOLD:-skaffold}
REGISTRY_PORT=${REGISTRY_PORT:-5000}
DRY_RUN=${DRY_RUN:-0}
CHART=charts/hashstack
SERVICES=(hello persistence hash)
# What the nodes pull (the proxy's hostPort) and so what skaffold must name its images.
NODE_REGISTRY=localhost:5000
DEFAULT_REPO=$NODE_REGISTRY/hashstack

log() { echo "registry-flow: $*" >&2; }
die() {
  log "$*"
  exit 1
}
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

# Step 1. An existing release is never touched here: disabling its services would take them down.
bootstrap() {
  if [ "$DRY_RUN" != 1 ] && helm status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    log "release $RELEASE exists: waiting for its registry"
    kubectl --namespace "$NAMESPACE" rollout status "deployment/$RELEASE-registry" --timeout=5m ||
      die "no ready deployment/$RELEASE-registry: is registry.enabled false in release $RELEASE?"
    return
  fi
  local svc off=()
  for svc in "${SERVICES[@]}"; do
    off+=(--set "$svc.enabled=false")
  done
  log "step 1: the chart without the services, so that the registry and its node proxy come up"
  run helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --create-namespace \
    --wait --timeout 10m --set registry.enabled=true "${off[@]}"
}

# Step 2's first half: the registry on 127.0.0.1:$REGISTRY_PORT until this script exits.
forward() {
  local cmd=(kubectl --namespace "$NAMESPACE" port-forward --address 127.0.0.1
    "service/$RELEASE-registry" "$REGISTRY_PORT:5000")
  if [ "$DRY_RUN" = 1 ]; then
    run "${cmd[@]}"
    return
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$REGISTRY_PORT") 2>/dev/null; then
    die "127.0.0.1:$REGISTRY_PORT is taken (another registry?): stop it or set REGISTRY_PORT"
  fi
  mkdir -p "$HASHSTACK_CACHE"
  "${cmd[@]}" >"$HASHSTACK_CACHE/registry-forward.log" 2>&1 &
  FORWARD_PID=$!
  trap 'kill "$FORWARD_PID" 2>/dev/null || true' EXIT
  local i
  for i in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; then
      log "registry forwarded to 127.0.0.1:$REGISTRY_PORT"
      return
    fi
    kill -0 "$FORWARD_PID" 2>/dev/null || break
    sleep 0.5
  done
  cat "$HASHSTACK_CACHE/registry-forward.log" >&2
  die "the registry did not answer on 127.0.0.1:$REGISTRY_PORT after ${i} tries"
}

with_skaffold() {
  command -v "$SKAFFOLD" >/dev/null 2>&1 ||
    die "skaffold is not installed (https://skaffold.dev/docs/install/); without it: $0 helm"
  [ "$REGISTRY_PORT" = 5000 ] ||
    die "skaffold deploys the name it pushes ($DEFAULT_REPO/...): REGISTRY_PORT must be 5000"
  bootstrap
  forward
  log "step 2: skaffold $MODE -p registry --default-repo=$DEFAULT_REPO"
  run "$SKAFFOLD" "$MODE" -p registry "--default-repo=$DEFAULT_REPO" "$@"
}

with_helm() {
  local tag svc line ref digest pushed sets=()
  tag=$(ci/images.sh tag)
  run ci/images.sh build
  bootstrap
  forward
  log "step 2: push localhost:$REGISTRY_PORT/hashstack/<service>:$tag, then install"
  if [ "$DRY_RUN" = 1 ]; then
    run ci/images.sh push "localhost:$REGISTRY_PORT"
    pushed=""
  else
    pushed=$(ci/images.sh push "localhost:$REGISTRY_PORT")
    echo "$pushed"
  fi
  for svc in "${SERVICES[@]}"; do
    sets+=(--set "$svc.enabled=true" --set "$svc.image.registry=$NODE_REGISTRY"
      --set "$svc.image.repository=hashstack/$svc" --set-string "$svc.image.tag=$tag")
    digest=""
    while read -r line; do
      ref=${line#pushed }
      case $ref in
        "localhost:$REGISTRY_PORT/hashstack/$svc:$tag@"*) digest=${ref##*@} ;;
      esac
    done <<<"$pushed"
    if [ -n "$digest" ]; then
      sets+=(--set-string "$svc.image.digest=$digest")
    else
      # No digest (docker push, or a dry run): the tag may have been pushed before, pull it anew.
      sets+=(--set "$svc.image.pullPolicy=Always")
    fi
  done
  run helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --create-namespace \
    --wait --timeout 10m "${sets[@]}"
}

case $MODE in
  run | dev) with_skaffold "$@" ;;
  helm)
    [ $# -eq 0 ] || die "helm mode takes no arguments"
    with_helm
    ;;
  *) usage ;;
esac
