#!/usr/bin/env bash
# Installs hashstack from this offline bundle on a cluster that has no internet.
#
#   ./install.sh                        all the steps below, in order
#   ./install.sh load                   0. the registry's own images onto the nodes (it cannot
#                                          pull them from itself): with NODE_IMPORT or
#                                          KIND_CLUSTER_NAME, else as archives in NODE_IMAGES_DIR
#                                          to import on every node by hand
#   ./install.sh registry [HELM ARGS...]
#                                       1. step 0, then the registry release in its own namespace
#   ./install.sh push                   2. every other image and the chart into that registry
#   ./install.sh app [--template] [HELM ARGS...]
#                                       3. hashstack from that registry (charts/hashstack), every
#                                          image (etcd's too) from localhost:HOSTPORT, the
#                                          registry's node proxy; --template prints the objects
#
# Needs: kubectl and helm (3.18+ or 4) for the cluster, and skopeo or podman to copy the images.
# Steps 2 and 3 reach the registry through `kubectl port-forward` to localhost, unless
# REGISTRY_ADDR names one that is already reachable (then no port-forward is started).
#
# Environment (defaults in brackets):
#   NAMESPACE [hashstack]  RELEASE [hashstack]            where the application goes
#   REGISTRY_NAMESPACE [hashstack-registry]  REGISTRY_RELEASE [hashstack-registry]
#   LOCAL_PORT             the port-forward's local port (default: a free one kubectl picks)
#   REGISTRY_ADDR          a registry reachable from here (host:port), instead of a port-forward
#   IMAGE_REGISTRY         where the nodes pull from (default: localhost:HOSTPORT, the registry
#                          proxy's hostPort as the registry release runs it, 5000 by default)
#   NODE_IMPORT            a command that imports one image archive (its last argument) where
#                          the nodes' runtime finds it, when the node is this machine, e.g.
#                          "ctr -n k8s.io images import" (kubeadm), "k3s ctr images import",
#                          "minikube image load"
#   KIND_CLUSTER_NAME      load them with `kind load image-archive` into this kind cluster
#   NODE_IMAGES_DIR [./node-images]  where step 0 leaves the archives without either of those
#   COPY_TOOL              skopeo or podman (default: skopeo when installed)
set -euo pipefail

BUNDLE=$(cd "$(dirname "$0")" && pwd)
NAMESPACE=${NAMESPACE:-hashstack}
RELEASE=${RELEASE:-hashstack}
REGISTRY_NAMESPACE=${REGISTRY_NAMESPACE:-hashstack-registry}
REGISTRY_RELEASE=${REGISTRY_RELEASE:-hashstack-registry}
LOCAL_PORT=${LOCAL_PORT:-}
NODE_IMAGES_DIR=${NODE_IMAGES_DIR:-$BUNDLE/node-images}
SERVICES=(hello persistence hash)
charts=("$BUNDLE"/charts/hashstack-*.tgz)
CHART_VERSION=${charts[0]##*/hashstack-}
CHART_VERSION=${CHART_VERSION%.tgz}

log() { echo "install: $*" >&2; }

die() {
  log "$*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is not installed (this step needs: $*)"
  done
}

verify_bundle() {
  (cd "$BUNDLE" && sha256sum --check --quiet --strict SHA256SUMS) \
    || die "the bundle is damaged: SHA256SUMS does not match (copy it again)"
}

# NAME ROLE TARGET MANIFEST-DIGEST CONFIG-DIGEST lines of images.txt with the given role.
images_with_role() {
  local role=$1 name r target manifest config
  while read -r name r target manifest config; do
    [ "$r" = "$role" ] && echo "$name $target $manifest $config"
  done <"$BUNDLE/images.txt"
  return 0
}

# Sets ADDR, the registry steps 2 and 3 use: REGISTRY_ADDR, or a port-forward to the registry
# Service (started once, ended when the script ends).
ADDR=""
connect_registry() {
  [ -z "$ADDR" ] || return 0
  if [ -n "${REGISTRY_ADDR:-}" ]; then
    ADDR=$REGISTRY_ADDR
    return
  fi
  need kubectl curl
  local service port
  read -r service port < <(kubectl get service -n "$REGISTRY_NAMESPACE" \
    -l "app.kubernetes.io/instance=$REGISTRY_RELEASE,app.kubernetes.io/name=registry" \
    -o jsonpath='{.items[0].metadata.name} {.items[0].spec.ports[0].port}{"\n"}') || true
  [ -n "${port:-}" ] || die "no registry Service: run ./install.sh registry"
  # Without LOCAL_PORT kubectl picks a free local port: where the node is this machine, the
  # registry's own node proxy already holds its hostPort on 127.0.0.1.
  local forward tries local_port=$LOCAL_PORT output
  output=$(mktemp)
  kubectl port-forward -n "$REGISTRY_NAMESPACE" "service/$service" "$LOCAL_PORT:$port" >"$output" 2>&1 &
  forward=$!
  # shellcheck disable=SC2064 # the pid and file are known now
  trap "kill $forward 2>/dev/null || true; rm -f '$output'" EXIT
  for tries in $(seq 1 30); do
    [ -n "$local_port" ] ||
      local_port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$output" | head -n 1)
    if [ -n "$local_port" ] &&
      curl --silent --fail --output /dev/null "http://localhost:$local_port/v2/"; then
      ADDR="localhost:$local_port"
      return
    fi
    kill -0 "$forward" 2>/dev/null || {
      cat "$output" >&2
      die "kubectl port-forward ended (is port ${LOCAL_PORT:-$local_port} free here? set LOCAL_PORT)"
    }
    sleep 1
  done
  cat "$output" >&2
  die "the registry did not answer on localhost:${local_port:-?} after $tries s"
}

# What the nodes pull from: IMAGE_REGISTRY, else localhost on the registry proxy's hostPort (the
# running release's, else the one the bundled registry chart renders).
node_registry() {
  if [ -n "${IMAGE_REGISTRY:-}" ]; then
    echo "$IMAGE_REGISTRY"
    return
  fi
  local port=""
  if command -v kubectl >/dev/null; then
    port=$(kubectl get daemonset -n "$REGISTRY_NAMESPACE" --request-timeout=10s \
      -l "app.kubernetes.io/instance=$REGISTRY_RELEASE,app.kubernetes.io/name=registry-proxy" \
      -o jsonpath='{.items[0].spec.template.spec.containers[*].ports[*].hostPort}' 2>/dev/null) ||
      port=""
  fi
  if [ -z "$port" ]; then
    port=$(helm template "$REGISTRY_RELEASE" "$BUNDLE/charts/registry-$CHART_VERSION.tgz" \
      --show-only templates/proxy-daemonset.yaml | sed -n 's/^ *hostPort: *\([0-9]*\).*/\1/p')
  fi
  [ -n "$port" ] || die "no hostPort for the registry proxy: set IMAGE_REGISTRY"
  echo "localhost:${port%% *}"
}

copy_tool() {
  local tool=${COPY_TOOL:-}
  if [ -z "$tool" ]; then
    tool=skopeo
    command -v skopeo >/dev/null || tool=podman
  fi
  case $tool in
    skopeo | podman) need "$tool" && echo "$tool" ;;
    *) die "COPY_TOOL must be skopeo or podman, not $tool" ;;
  esac
}

# Copies one image of the layout to REGISTRY/TARGET, with skopeo (layers as they are, so the
# same manifest digest) or podman (the same image: configuration and layers; it may recompress).
copy_image() {
  local name=$1 dest=$2 tool id
  tool=$(copy_tool)
  if [ "$tool" = skopeo ]; then
    skopeo copy --quiet --dest-tls-verify=false "oci:$BUNDLE/images:$name" "docker://$dest"
  else
    id=$(podman pull --quiet "oci:$BUNDLE/images:$name")
    podman push --quiet --tls-verify=false "$id" "docker://$dest"
  fi
}

# Writes one image of the layout as a docker archive that names it TARGET (what `ctr images
# import`, `kind load image-archive` and `docker load` take).
export_image() {
  local name=$1 target=$2 archive=$3 tool id
  tool=$(copy_tool)
  rm -f "$archive"
  if [ "$tool" = skopeo ]; then
    skopeo copy --quiet "oci:$BUNDLE/images:$name" "docker-archive:$archive:$target"
  else
    id=$(podman pull --quiet "oci:$BUNDLE/images:$name")
    podman tag "$id" "$target"
    podman save --quiet --format docker-archive --output "$archive" "$target"
  fi
}

# Step 0: the images the registry release runs, under the chart's own references.
step_load() {
  local name target manifest config archive importer=()
  if [ -n "${NODE_IMPORT:-}" ]; then
    read -r -a importer <<<"$NODE_IMPORT"
  elif [ -n "${KIND_CLUSTER_NAME:-}" ]; then
    need kind
    importer=(kind load image-archive --name "$KIND_CLUSTER_NAME")
  fi
  mkdir -p "$NODE_IMAGES_DIR"
  while read -r name target manifest config; do
    archive="$NODE_IMAGES_DIR/$name.tar"
    export_image "$name" "$target" "$archive"
    if [ ${#importer[@]} -gt 0 ]; then
      "${importer[@]}" "$archive" >&2 || die "${importer[*]} $archive failed"
      rm -f "$archive"
      log "loaded $target ($config) with ${importer[*]}"
    else
      log "$target ($config) must be on every node before step 1 (the registry cannot pull"
      log "  itself): copy $archive to each node and import it there"
      log "  (ctr -n k8s.io images import $name.tar), or set NODE_IMPORT / KIND_CLUSTER_NAME"
    fi
  done < <(images_with_role node)
  rmdir "$NODE_IMAGES_DIR" 2>/dev/null || true
}

step_registry() {
  need helm kubectl
  step_load
  helm upgrade --install "$REGISTRY_RELEASE" "$BUNDLE/charts/registry-$CHART_VERSION.tgz" \
    --namespace "$REGISTRY_NAMESPACE" --create-namespace --wait --timeout 10m "$@"
  log "registry release $REGISTRY_RELEASE ready in namespace $REGISTRY_NAMESPACE"
}

step_push() {
  need helm
  local name target manifest config
  connect_registry
  while read -r name target manifest config; do
    copy_image "$name" "$ADDR/$target"
    log "pushed $ADDR/$target ($manifest, config $config)"
  done < <(images_with_role push)
  helm push "$BUNDLE/charts/hashstack-$CHART_VERSION.tgz" "oci://$ADDR/charts" --plain-http >&2
  log "pushed oci://$ADDR/charts/hashstack:$CHART_VERSION"
}

step_app() {
  need helm
  local action=(upgrade --install --namespace "$NAMESPACE" --create-namespace --wait --timeout 10m)
  if [ "${1:-}" = --template ]; then
    action=(template --namespace "$NAMESPACE")
    shift
  fi
  local values=(--set registry.enabled=false) name third_party="" registry svc
  connect_registry
  registry=$(node_registry)
  for name in $(images_with_role push | cut -d' ' -f1); do
    [[ " ${SERVICES[*]} " == *" $name "* ]] || third_party=1
  done
  if [ -n "$third_party" ]; then
    # The bundle serves etcd's image too: every image of the release from the registry, under
    # the path the bundle pushed it to (the chart's reference without its registry host).
    values+=(--set "global.imageRegistry=$registry")
  else
    # Only the services come from the registry; etcd keeps its upstream image.
    for svc in "${SERVICES[@]}"; do values+=(--set "$svc.image.registry=$registry"); done
  fi
  helm "${action[@]}" "$RELEASE" "oci://$ADDR/charts/hashstack" --version "$CHART_VERSION" \
    --plain-http "${values[@]}" "$@"
}

case ${1:-all} in
  -h | --help) usage ;;
  load) verify_bundle && step_load ;;
  registry) shift && verify_bundle && step_registry "$@" ;;
  push) verify_bundle && step_push ;;
  app) shift && verify_bundle && step_app "$@" ;;
  all)
    verify_bundle
    step_registry
    step_push
    step_app
    ;;
  *) usage ;;
esac
