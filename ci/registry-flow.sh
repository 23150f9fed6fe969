#!/usr/bin/env bash
# The seed's registry flow: the images go to the chart's own registry, which every node pulls
# as localhost:5000 through its node proxy. Two releases of the same chart, two namespaces:
#   registry  release $REGISTRY_RELEASE in $REGISTRY_NAMESPACE (Pod Security enforce=privileged,
#             warn/audit=restricted: the proxy's hostPort needs it): the registry and its node
#             proxy only (ci/registry-flow/registry.yaml). It outlives the application: the
#             images and the registry's PVC stay when the app release is uninstalled.
#   app       release $RELEASE in $NAMESPACE (enforce=restricted): hello, persistence, hash,
#             etcd, registry.enabled=false (ci/registry-flow/app.yaml), images
#             localhost:5000/hashstack/<service>.
# Skaffold builds and pushes every artifact before it deploys anything, so the registry has to
# run before the first build: two steps.
#   1. When the registry release does not exist yet: install it (and label both namespaces).
#   2. Forward the registry to 127.0.0.1:$REGISTRY_PORT, then build, push and deploy the app:
#        run   skaffold run -p registry --default-repo=localhost:5000/hashstack [ARGS]
#        dev   skaffold dev -p registry --default-repo=localhost:5000/hashstack [ARGS]
#        helm  ci/images.sh build and push (tag: the git revision), then helm upgrade --install
#              with those tags, pinned by digest (no skaffold needed; `make deploy` uses it)
#
#   ci/registry-flow.sh run|dev|helm [SKAFFOLD_ARGS...]
#
# Pushes go through the port-forward (which needs RBAC on the registry namespace): the node
# proxy refuses everything but GET and HEAD. The engine that pushes (docker, or podman for
# `helm`) must reach 127.0.0.1 of this machine.
#
# Environment: RELEASE, NAMESPACE (the app; default hashstack; skaffold.yaml fixes both to
#   hashstack), REGISTRY_RELEASE (default hashstack), REGISTRY_NAMESPACE (default
#   hashstack-registry), REGISTRY_PORT (local end of the forward; `helm`: default a free
#   loopback port, picked here, since on a single-node cluster whose node is this machine the
#   chart's own node proxy already answers on 127.0.0.1:5000; `run`/`dev`: the proxy's hostPort,
#   5000, which skaffold needs because it deploys the very name it pushed), SKAFFOLD (binary),
#   TAG (ci/images.sh), DRY_RUN=1 (print the commands, run none).
# Object names and ports (the registry's Service and Deployment, the proxy's hostPort) come from
# the chart as `helm template` renders these releases (ci/rendered.py), never from literals.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

[ $# -gt 0 ] || usage
MODE=$1
shift
RELEASE=${RELEASE:-hashstack}
NAMESPACE=${NAMESPACE:-hashstack}
REGISTRY_RELEASE=${REGISTRY_RELEASE:-hashstack}
REGISTRY_NAMESPACE=${REGISTRY_NAMESPACE:-hashstack-registry}
SKAFFOLD=${SKAFFOLD:-skaffold}
DRY_RUN=${DRY_RUN:-0}
CHART=charts/hashstack
TOPOLOGY=ci/registry-flow
SERVICES=(hello persistence hash)

need_pyyaml # ci/rendered.py
# A fact of release 1 (the registry) or of the app release as an older layout had it.
registry_fact() {
  python3 ci/rendered.py --release "$REGISTRY_RELEASE" --values "$TOPOLOGY/registry.yaml" "$@"
}
REGISTRY_SERVICE=$(registry_fact name Service registry)
REGISTRY_SERVICE_PORT=$(registry_fact service-port registry)
REGISTRY_DEPLOYMENT=$(registry_fact name Deployment registry)
NODE_PORT=$(registry_fact host-port registry-proxy)
OLD_APP_PROXY=$(python3 ci/rendered.py --release "$RELEASE" name DaemonSet registry-proxy)
# What the nodes pull (the proxy's hostPort) and so what skaffold must name its images.
NODE_REGISTRY=localhost:$NODE_PORT
DEFAULT_REPO=$NODE_REGISTRY/hashstack
REGISTRY_PORT_GIVEN=${REGISTRY_PORT:-}
REGISTRY_PORT=${REGISTRY_PORT:-$NODE_PORT}


# A namespace whose Pod Security admission enforces LEVEL (warn and audit: restricted).
namespace_at_level() {
  local ns=$1 level=$2
  if [ "$DRY_RUN" = 1 ] || ! kubectl get namespace "$ns" >/dev/null 2>&1; then
    run kubectl create namespace "$ns"
  fi
  run kubectl label --overwrite namespace "$ns" "pod-security.kubernetes.io/enforce=$level" \
    pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted
}

# Step 1. An existing registry release is only waited for, never changed here.
bootstrap() {
  # The earlier layout ran the registry inside the app release: its proxy holds the hostPort
  # on every node, and the app namespace could not enforce restricted.
  if [ "$DRY_RUN" != 1 ] && [ "$NAMESPACE" != "$REGISTRY_NAMESPACE" ] &&
    kubectl --namespace "$NAMESPACE" get "daemonset/$OLD_APP_PROXY" >/dev/null 2>&1; then
    die "release $RELEASE in $NAMESPACE still runs its own registry proxy: helm upgrade it" \
      "with --set registry.enabled=false (or uninstall it) first (docs/cluster.md)"
  fi
  namespace_at_level "$REGISTRY_NAMESPACE" privileged
  namespace_at_level "$NAMESPACE" restricted
  if [ "$DRY_RUN" != 1 ] &&
    helm status "$REGISTRY_RELEASE" --namespace "$REGISTRY_NAMESPACE" >/dev/null 2>&1; then
    log "release $REGISTRY_RELEASE exists in $REGISTRY_NAMESPACE: waiting for its registry"
    kubectl --namespace "$REGISTRY_NAMESPACE" rollout status \
      "deployment/$REGISTRY_DEPLOYMENT" --timeout=5m ||
      die "no ready deployment/$REGISTRY_DEPLOYMENT in namespace $REGISTRY_NAMESPACE"
    return
  fi
  log "step 1: release $REGISTRY_RELEASE in $REGISTRY_NAMESPACE: the registry and its node proxy"
  run helm upgrade --install "$REGISTRY_RELEASE" "$CHART" --namespace "$REGISTRY_NAMESPACE" \
    --wait --timeout 10m --values "$TOPOLOGY/registry.yaml"
}

# Whether this run picks the forward's local port itself (helm mode, REGISTRY_PORT unset).
picks_port() {
  [ -z "$REGISTRY_PORT_GIVEN" ] && [ "$MODE" = helm ]
}

# A loopback port nothing listens on (the kernel's choice), for the forward's local end.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Step 2's first half: the registry on 127.0.0.1:$REGISTRY_PORT until this script exits.
# A port picked here that another process takes before kubectl binds it is picked again.
forward() {
  local attempt
  for attempt in 1 2 3; do
    if picks_port; then REGISTRY_PORT=$(free_port); fi
    forward_once && return
    picks_port || break
    log "forward to 127.0.0.1:$REGISTRY_PORT failed (attempt $attempt): another port"
  done
  cat "$HASHSTACK_CACHE/registry-forward.log" >&2
  die "the registry did not answer on 127.0.0.1:$REGISTRY_PORT"
}

forward_once() {
  local cmd=(kubectl --namespace "$REGISTRY_NAMESPACE" port-forward --address 127.0.0.1
    "service/$REGISTRY_SERVICE" "$REGISTRY_PORT:$REGISTRY_SERVICE_PORT")
  if [ "$DRY_RUN" = 1 ]; then
    run "${cmd[@]}"
    return
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$REGISTRY_PORT") 2>/dev/null; then
    if picks_port; then return 1; fi
    if [ "$MODE" = helm ]; then
      die "127.0.0.1:$REGISTRY_PORT is taken: stop what listens there, or leave REGISTRY_PORT unset"
    fi
    die "127.0.0.1:$REGISTRY_PORT is taken (another registry, or the chart's node proxy of a" \
      "cluster whose node is this machine?): skaffold needs it; stop it, or use" \
      "ci/registry-flow.sh helm, which forwards to a free port"
  fi
  mkdir -p "$HASHSTACK_CACHE"
  "${cmd[@]}" >"$HASHSTACK_CACHE/registry-forward.log" 2>&1 &
  FORWARD_PID=$!
  trap 'kill "$FORWARD_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; then
      log "registry forwarded to 127.0.0.1:$REGISTRY_PORT"
      return
    fi
    kill -0 "$FORWARD_PID" 2>/dev/null || return 1
    sleep 0.5
  done
  kill "$FORWARD_PID" 2>/dev/null || true
  return 1
}

with_skaffold() {
  command -v "$SKAFFOLD" >/dev/null 2>&1 ||
    die "skaffold is not installed (https://skaffold.dev/docs/install/); without it: $0 helm"
  [ "$REGISTRY_PORT" = "$NODE_PORT" ] ||
    die "skaffold deploys the name it pushes ($DEFAULT_REPO/...): REGISTRY_PORT must be $NODE_PORT"
  bootstrap
  forward
  log "step 2: skaffold $MODE -p registry --default-repo=$DEFAULT_REPO"
  run "$SKAFFOLD" "$MODE" -p registry "--default-repo=$DEFAULT_REPO" "$@"
}

with_helm() {
  local tag svc line ref digest pushed sets=(--values "$TOPOLOGY/app.yaml")
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
    sets+=(--set "$svc.image.registry=$NODE_REGISTRY"
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
  log "step 2: release $RELEASE in $NAMESPACE (Pod Security restricted)"
  run helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
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
