#!/usr/bin/env bash
# A kind cluster with a local registry, following kind's documented local-registry pattern:
#   1. a registry container published on 127.0.0.1:$KIND_REGISTRY_PORT (default 5001),
#   2. joined to the `kind` network so that nodes reach it by its container name,
#   3. a containerd hosts.toml on every node mapping localhost:$KIND_REGISTRY_PORT (and only
#      that name) to it, so pods pull localhost:5001/hashstack/<service>:<tag>,
#   4. the kube-public/local-registry-hosting ConfigMap (KEP-1755) telling tools where to push.
# localhost:5000 is left alone on purpose: there the nodes reach the chart's own registry
# through its node proxy (hostPort 5000), the seed's flow that tests/cluster exercises.
# Usage: ci/kind/cluster.sh up|down. Idempotent; works with docker or podman.
# Environment: KIND_CLUSTER_NAME, KIND_NODE_IMAGE, KIND_CONFIG (default ci/kind/cluster.yaml),
#   KIND_REGISTRY_NAME, KIND_REGISTRY_PORT, KIND_REGISTRY_IMAGE, KIND_KUBECONFIG, ENGINE.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
# shellcheck disable=SC2034 # read by log() in ci/env.sh
LOG_PREFIX=kind-cluster
cd "$HASHSTACK_ROOT"

# The newest of the workflow's e2e matrix (tests/ci checks they agree).
DEFAULT_NODE_IMAGE="kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
DEFAULT_REGISTRY_IMAGE="docker.io/library/registry:3.0.0@sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e"

CLUSTER="${KIND_CLUSTER_NAME:-hashstack}"
NODE_IMAGE="${KIND_NODE_IMAGE:-$DEFAULT_NODE_IMAGE}"
REGISTRY_NAME="${KIND_REGISTRY_NAME:-kind-registry}"
REGISTRY_PORT="${KIND_REGISTRY_PORT:-5001}"
# The chart's node proxy listens on this port on every node: never redirect it.
NODE_PROXY_PORT=5000
REGISTRY_IMAGE="${KIND_REGISTRY_IMAGE:-$DEFAULT_REGISTRY_IMAGE}"
KUBECONFIG_FILE="${KIND_KUBECONFIG:-$HASHSTACK_CACHE/kind/kubeconfig}"
CONFIG="${KIND_CONFIG:-ci/kind/cluster.yaml}"


# $ENGINE or kind's provider when set, else docker when its daemon answers, else podman
# (kind then needs its podman provider).
container_engine() {
  if [ -n "${ENGINE:-}" ]; then
    echo "$ENGINE"
  elif [ -n "${KIND_EXPERIMENTAL_PROVIDER:-}" ]; then
    echo "$KIND_EXPERIMENTAL_PROVIDER"
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo docker
  elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    echo podman
  else
    return 1
  fi
}

ENGINE=$(container_engine) || die "neither docker nor podman answers"
if [ "$ENGINE" = podman ]; then export KIND_EXPERIMENTAL_PROVIDER=podman; fi
[ "$REGISTRY_PORT" != "$NODE_PROXY_PORT" ] ||
  die "KIND_REGISTRY_PORT=$NODE_PROXY_PORT would hide the chart's node proxy (localhost:5000)"
command -v kind >/dev/null || die "kind is not on PATH (https://kind.sigs.k8s.io/docs/user/quick-start/)"

registry_up() {
  if [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null || true)" != true ]; then
    "$ENGINE" rm -f "$REGISTRY_NAME" >/dev/null 2>&1 || true
    log "registry $REGISTRY_NAME on 127.0.0.1:$REGISTRY_PORT"
    "$ENGINE" run -d --restart=always --name "$REGISTRY_NAME" \
      -p "127.0.0.1:$REGISTRY_PORT:5000" -e REGISTRY_STORAGE_DELETE_ENABLED=true \
      "$REGISTRY_IMAGE" >/dev/null
  fi
}

cluster_up() {
  mkdir -p "$(dirname "$KUBECONFIG_FILE")"
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "cluster $CLUSTER exists; reusing it"
    kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"
  else
    log "cluster $CLUSTER from $NODE_IMAGE"
    kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" \
      --config "$CONFIG" --kubeconfig "$KUBECONFIG_FILE" --wait 180s
  fi
}

# localhost inside a node is the node itself: tell containerd where localhost:<port> really is.
# A hosts.toml for localhost:5000 (left by an older version of this script) is removed, so
# that name goes to the node proxy.
nodes_use_registry() {
  local dir="/etc/containerd/certs.d/localhost:$REGISTRY_PORT" node
  for node in $(kind get nodes --name "$CLUSTER"); do
    "$ENGINE" exec "$node" rm -rf "/etc/containerd/certs.d/localhost:$NODE_PROXY_PORT"
    "$ENGINE" exec "$node" mkdir -p "$dir"
    printf '[host."http://%s:5000"]\n' "$REGISTRY_NAME" \
      | "$ENGINE" exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
  done
}

registry_join_kind_network() {
  local networks
  # shellcheck disable=SC2016 # a Go template for inspect, not a shell expansion
  networks=$("$ENGINE" inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$REGISTRY_NAME")
  case " $networks " in
    *" kind "*) ;;
    *) "$ENGINE" network connect kind "$REGISTRY_NAME" ;;
  esac
}

document_registry() {
  kubectl --kubeconfig "$KUBECONFIG_FILE" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$REGISTRY_PORT"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
}

case "${1:-}" in
  up)
    registry_up
    cluster_up
    nodes_use_registry
    registry_join_kind_network
    document_registry
    log "ready: KUBECONFIG=$KUBECONFIG_FILE, push to localhost:$REGISTRY_PORT"
    ;;
  down)
    kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" || true
    "$ENGINE" rm -f "$REGISTRY_NAME" >/dev/null 2>&1 || true
    ;;
  *)
    die "usage: $0 up|down"
    ;;
esac
