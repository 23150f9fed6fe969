#!/usr/bin/env bash
# `make bundle`: one file that installs hashstack on a cluster without internet.
#
#   ci/bundle.sh [OUTPUT]      default: dist/hashstack-bundle-VERSION.tar
#
# The bundle holds, under hashstack-bundle-VERSION/:
#   images/          one OCI image layout with every image (shared layers stored once)
#   images.txt       NAME ROLE TARGET MANIFEST-DIGEST CONFIG-DIGEST, one image a line; ROLE is
#                    `push` (into the in-cluster registry) or `node` (the registry's own images,
#                    which cannot come from the registry itself: loaded onto the nodes)
#   charts/          hashstack-VERSION.tgz and registry-VERSION.tgz (helm package)
#   install.sh       the three steps (ci/bundle/install.sh; `./install.sh --help`)
#   SHA256SUMS       every file above, checked by install.sh before it does anything
#
# Environment:
#   TAG             tag of the local hashstack/{hello,persistence,hash} images (`make images`);
#                   default: `ci/images.sh tag`
#   ETCD_IMAGE      local image to ship as the chart's etcd image (optional)
#   REGISTRY_IMAGE  local image to ship as the registry subchart's registry image (optional)
#   PROXY_IMAGE     local image to ship as the registry subchart's proxy image (optional)
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

# The chart's default reference of each image, e.g. "etcd registry.k8s.io/etcd:3.5.21-0".
declare -A defaults
while read -r name ref; do defaults[$name]=$ref; done < <(ci/version.sh images)

# A reference without its registry host: what the image is called inside the in-cluster registry.
path_of() {
  local ref=$1 first=${1%%/*}
  if [[ $ref == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
    echo "${ref#*/}"
  else
    echo "$ref"
  fi
}

# add_image NAME ROLE SOURCE TARGET [HINT]: copy SOURCE (a local image) into the layout.
add_image() {
  local name=$1 role=$2 source=$3 target=$4 digestfile="$work/digest" id
  id=$("$ENGINE" image inspect --format '{{.Id}}' "$source" 2>/dev/null) \
    || die "no local image $source${5:+ ($5)}"
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

for svc in hello persistence hash; do
  # podman finds localhost/hashstack/...; docker names its builds hashstack/... (docker.io).
  add_image "$svc" push "hashstack/$svc:$tag" "hashstack/$svc:$version" \
    "build it with: make images TAG=$tag"
done
[ -z "${ETCD_IMAGE:-}" ] || add_image etcd push "$ETCD_IMAGE" "$(path_of "${defaults[etcd]}")"
# Loaded onto the nodes under the very name the registry subchart asks for: no value to change.
[ -z "${REGISTRY_IMAGE:-}" ] || add_image registry node "$REGISTRY_IMAGE" "${defaults[registry]}"
[ -z "${PROXY_IMAGE:-}" ] || add_image registry-proxy node "$PROXY_IMAGE" "${defaults[registry-proxy]}"

chart_copy "$work/chart"
helm package "$work/chart" --destination "$stage/charts" >/dev/null
helm package "$work/chart/charts/registry" --destination "$stage/charts" >/dev/null
install -m 0755 ci/bundle/install.sh "$stage/install.sh"
(cd "$stage" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >"$work/sums")
mv "$work/sums" "$stage/SHA256SUMS"

mkdir -p "$(dirname "$output")"
tar -C "$work" -cf "$output" "hashstack-bundle-$version"
echo "bundle: $output ($(du -h "$output" | cut -f1), $(wc -l <"$stage/images.txt") images, chart $version)"
