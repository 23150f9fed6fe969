#!/usr/bin/env bash
# `make bundle`: one file that installs hashstack on a cluster without internet.
#
#   ci/bundle.sh [OUTPUT]      default: dist/hashstack-bundle-VERSION.tar
#
# The bundle holds, under hashstack-bundle-VERSION/:
#   images/          one OCI image layout with every image (shared layers stored once): the three
#                    services and every other image the chart renders (`helm template` with its
#                    defaults: etcd, the registry and its node proxy)
#   images.txt       NAME ROLE TARGET MANIFEST-DIGEST CONFIG-DIGEST, one image a line; ROLE is
#                    `push` (into the in-cluster registry, TARGET without a registry host) or
#                    `node` (the images the registry chart renders: the registry cannot pull its
#                    own images, so they go onto the nodes under TARGET, the chart's reference)
#   charts/          hashstack-VERSION.tgz and registry-VERSION.tgz (helm package)
#   install.sh       the steps (ci/bundle/install.sh; `./install.sh --help`)
#   SHA256SUMS       every file above, checked by install.sh before it does anything
#
# Each third-party image comes from the local store when it holds the chart's reference, else
# ENGINE pulls it; when neither works the bundle is not made (say where it is, or leave it out).
#
# Environment:
#   TAG             tag of the local hashstack/{hello,persistence,hash} images (`make images`);
#                   default: `ci/images.sh tag`
#   THIRD_PARTY     1 (default): bundle the chart's third-party images; 0: the three services
#                   only (the cluster then pulls etcd, the registry and its proxy itself)
#   ETCD_IMAGE      a local image to ship as the chart's etcd image instead of its reference
#   REGISTRY_IMAGE  the same for the registry subchart's registry image
#   PROXY_IMAGE     the same for the registry subchart's proxy image
#   ENGINE          where the local images are: podman (default) or docker
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"


ENGINE=${ENGINE:-podman}
case $ENGINE in
  podman) ;;
  docker) command -v skopeo >/dev/null || die "ENGINE=docker needs skopeo (ci/install-deps.sh)" ;;
  *) die "ENGINE must be podman or docker, not $ENGINE" ;;
esac
version=$(ci/version.sh show)
tag=${TAG:-$(ci/images.sh tag)}
output=${1:-$HASHSTACK_ROOT/dist/hashstack-bundle-$version.tar}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/hashstack-bundle-$version"
mkdir -p "$stage/charts"

need_pyyaml # rendered_images
THIRD_PARTY=${THIRD_PARTY:-1}
case $THIRD_PARTY in
  0 | 1) ;;
  *) die "THIRD_PARTY must be 1 or 0, not $THIRD_PARTY" ;;
esac

# The name images.txt gives each image the chart deploys by default ("etcd", "registry",
# "registry-proxy"), keyed by its reference.
declare -A names
while read -r name ref; do names[$ref]=$name; done < <(ci/version.sh images)

# A reference without its registry host: what the image is called inside the in-cluster registry.
path_of() {
  local ref=$1 first=${1%%/*}
  if [[ $ref == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
    echo "${ref#*/}"
  else
    echo "$ref"
  fi
}

# Every image reference in the objects `helm template` renders (containers and initContainers
# of every pod, hooks and test pods included), one a line, sorted.
rendered_images() {
  helm template bundle "$1" | python3 -c '
import sys, yaml

def walk(node):
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for container in node.get(key) or []:
                if isinstance(container, dict) and "image" in container:
                    yield container["image"]
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)

print("\n".join(sorted({i for doc in yaml.safe_load_all(sys.stdin) if doc for i in walk(doc)})))
'
}

local_image_id() {
  "$ENGINE" image inspect --format '{{.Id}}' "$1" 2>/dev/null
}

# add_image NAME ROLE SOURCE TARGET [HINT]: copy SOURCE (a local image) into the layout.
add_image() {
  local name=$1 role=$2 source=$3 target=$4 digestfile="$work/digest" id
  id=$(local_image_id "$source") || die "no local image $source${5:+ ($5)}"
  # Layers compressed once, here; the install script copies them as they are.
  if [ "$ENGINE" = podman ]; then
    podman push --quiet --digestfile "$digestfile" "$source" "oci:$stage/images:$name"
  else
    skopeo copy --quiet --dest-compress --digestfile "$digestfile" \
      "docker-daemon:$source" "oci:$stage/images:$name"
  fi
  printf '%s %s %s %s sha256:%s\n' "$name" "$role" "$target" "$(cat "$digestfile")" \
    "${id#sha256:}" >>"$stage/images.txt"
  echo "bundle: $name <- $source as $target ($role)"
}

# The sources of the third-party images, checked (and pulled) before anything is copied.
chart_copy "$work/chart"
third_party=()
if [ "$THIRD_PARTY" = 1 ]; then
  declare -A node_images
  while read -r ref; do node_images[$ref]=1; done < <(rendered_images "$work/chart/charts/registry")
  declare -A overrides=(
    [etcd]=${ETCD_IMAGE:-} [registry]=${REGISTRY_IMAGE:-} [registry-proxy]=${PROXY_IMAGE:-}
  )
  while read -r ref; do
    [[ $(path_of "$ref") != hashstack/* ]] || continue # the services: built here, added below
    repository=${ref%%@*}
    repository=${repository%:*}
    name=${names[$ref]:-${repository##*/}}
    source=${overrides[$name]:-$ref}
    if ! local_image_id "$source" >/dev/null; then
      [ "$source" = "$ref" ] || die "no local image $source (named for $name)"
      echo "bundle: $ref is not in the local store: $ENGINE pull $ref"
      "$ENGINE" pull "$ref" >&2 ||
        die "cannot pull $ref: pull or load it where this runs, name a local copy" \
          "(ETCD_IMAGE, REGISTRY_IMAGE, PROXY_IMAGE), or leave the third-party images out" \
          "with THIRD_PARTY=0"
    fi
    if [ -n "${node_images[$ref]:-}" ]; then
      # Loaded onto the nodes under the very name the registry chart asks for: no value to change.
      third_party+=("$name node $source $ref")
    else
      # Served by the in-cluster registry; install.sh points the chart there (global.imageRegistry).
      third_party+=("$name push $source $(path_of "$ref")")
    fi
  done < <(rendered_images "$work/chart")
fi

for svc in hello persistence hash; do
  # podman finds localhost/hashstack/...; docker names its builds hashstack/... (docker.io).
  add_image "$svc" push "hashstack/$svc:$tag" "hashstack/$svc:$version" \
    "build it with: make images TAG=$tag"
done
for line in "${third_party[@]}"; do
  # shellcheck disable=SC2086 # four words: NAME ROLE SOURCE TARGET
  add_image $line
done

helm package "$work/chart" --destination "$stage/charts" >/dev/null
helm package "$work/chart/charts/registry" --destination "$stage/charts" >/dev/null
install -m 0755 ci/bundle/install.sh "$stage/install.sh"
(cd "$stage" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >"$work/sums")
mv "$work/sums" "$stage/SHA256SUMS"

mkdir -p "$(dirname "$output")"
tar -C "$work" -cf "$output" "hashstack-bundle-$version"
echo "bundle: $output ($(du -h "$output" | cut -f1), $(wc -l <"$stage/images.txt") images, chart $version)"
