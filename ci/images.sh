#!/usr/bin/env bash
# Container images of hello, persistence and hash: one build file (images/Dockerfile), one target each.
#
#   ci/images.sh build [SERVICE...]     build (all three by default), tagged $TAG    (make images)
#   ci/images.sh push REGISTRY [SERVICE...]  push as REGISTRY/hashstack/SERVICE:$TAG  (make push)
#   ci/images.sh base                   make the local Python base image (mmdebstrap, no pull)
#   ci/images.sh wheelhouse             pip wheels for images/requirements.txt in $HASHSTACK_CACHE
#   ci/images.sh testimages             test-only etcd (upstream 3.5), registry and haproxy images
#   ci/images.sh registry [ADDR]        run a registry on ADDR (127.0.0.1:5000) in the foreground
#   ci/images.sh tag                    print the tag builds use
#   ci/images.sh skaffold SERVICE       skaffold's custom builder (skaffold.yaml, profile podman):
#                                       build SERVICE from $BUILD_CONTEXT exactly as `build` does,
#                                       tagged $IMAGE, pushed when $PUSH_IMAGE is true
#
# Environment:
#   TAG             image tag; default: `git rev-parse --short HEAD`, or `dev` without a commit
#   OFFLINE         1 (default): local base image + host wheelhouse, `--network=none`;
#                   0: the Dockerfile's defaults (official python slim image, PyPI)
#   BASE_IMAGE      base image for OFFLINE=1 (default localhost/hashstack-base/python:3.11-bookworm);
#                   with OFFLINE=0 only when set (a fully qualified name spares podman's
#                   short-name lookup; the tests inspect the same image)
#   CONTEXT         build context (default images/); the tests build a modified copy
#   APP_OWNER       owner of /app in the image (default 0:0; 10001:10001 for skaffold file sync)
#   ENGINE          podman (default) or docker
#   SIZE_LIMIT_MB   a build fails when an image is larger, uncompressed (default 60; issue 24)
#   TLS_VERIFY      push over TLS; default false for localhost/127.0.0.1 registries, true otherwise
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

SERVICES=(hello persistence hash)
ENGINE=${ENGINE:-podman}
OFFLINE=${OFFLINE:-1}
BASE_IMAGE_GIVEN=${BASE_IMAGE:-}
BASE_IMAGE=${BASE_IMAGE:-localhost/hashstack-base/python:3.11-bookworm}
CONTEXT=${CONTEXT:-$HASHSTACK_ROOT/images}
WHEELHOUSE="$HASHSTACK_CACHE/wheelhouse"

image_tag() {
  if [ -n "${TAG:-}" ]; then
    echo "$TAG"
  elif rev=$(git -C "$HASHSTACK_ROOT" rev-parse --short HEAD 2>/dev/null); then
    echo "$rev"
  else
    echo dev
  fi
}

services_or_all() {
  local svc
  [ $# -gt 0 ] || set -- "${SERVICES[@]}"
  for svc in "$@"; do
    case " ${SERVICES[*]} " in
      *" $svc "*) echo "$svc" ;;
      *) echo "unknown service: $svc (${SERVICES[*]})" >&2; exit 2 ;;
    esac
  done
}

cmd_base() {
  ci/images/base.sh "$BASE_IMAGE"
}

# The wheelhouse is rebuilt only when requirements.txt changes (the stamp holds its checksum).
cmd_wheelhouse() {
  local stamp="$WHEELHOUSE/.requirements.sha256" sum lock
  sum=$(sha256sum "$CONTEXT/requirements.txt" | cut -d' ' -f1)
  # Concurrent builds: one fills the wheelhouse, the others wait for it.
  mkdir -p "$HASHSTACK_CACHE"
  exec {lock}>"$HASHSTACK_CACHE/wheelhouse.lock"
  flock "$lock"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    echo "wheelhouse is up to date ($WHEELHOUSE)"
    exec {lock}>&-
    return
  fi
  mkdir -p "$WHEELHOUSE"
  # The wheels must fit the image's Python: the base image's python3 and this one must agree.
  local here_py image_py
  here_py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  image_py=$(podman run --rm --network=none "$BASE_IMAGE" \
    python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$here_py" != "$image_py" ]; then
    echo "python $here_py here but $image_py in $BASE_IMAGE: the wheels would not fit" >&2
    exit 1
  fi
  python3 -m pip wheel --quiet --disable-pip-version-check \
    --find-links "$WHEELHOUSE" --wheel-dir "$WHEELHOUSE" --requirement "$CONTEXT/requirements.txt"
  echo "$sum" >"$stamp"
  echo "wheelhouse ready ($WHEELHOUSE, python $here_py)"
  exec {lock}>&-
}

# check_size IMAGE: print its size (uncompressed, as the engine reports it); fail above the limit.
check_size() {
  local size limit=$((${SIZE_LIMIT_MB:-60} * 1000000))
  size=$("$ENGINE" image inspect --format '{{.Size}}' "$1")
  echo "$1: $(awk -v size="$size" 'BEGIN { printf "%.1f", size / 1e6 }') MB"
  if [ "$size" -gt "$limit" ]; then
    echo "$1 is $size bytes, over the limit of $limit (SIZE_LIMIT_MB)" >&2
    exit 1
  fi
}

# The build arguments every build shares (`build` and `skaffold`): the same bytes either way.
# Sets the array BUILD_ARGS; makes the base image and the wheelhouse first when OFFLINE=1.
build_args() {
  local revision source_url
  revision=$(git -C "$HASHSTACK_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  source_url=$(git -C "$HASHSTACK_ROOT" remote get-url origin 2>/dev/null || true)
  BUILD_ARGS=(
    build --layers -f "$CONTEXT/Dockerfile"
    --build-arg "VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$CONTEXT/pyproject.toml")"
    --build-arg "REVISION=$revision"
    --build-arg "SOURCE=$source_url"
  )
  # 10001:10001 for a dev image whose /app skaffold may sync files into (see docs/development.md).
  [ -z "${APP_OWNER:-}" ] || BUILD_ARGS+=(--build-arg "APP_OWNER=$APP_OWNER")
  if [ "$OFFLINE" = 1 ]; then
    cmd_base
    cmd_wheelhouse
    BUILD_ARGS+=(
      --network=none
      --build-arg "BASE_IMAGE=$BASE_IMAGE"
      --build-context "wheelhouse=$WHEELHOUSE"
      --build-arg PIP_NO_INDEX=1
    )
  elif [ -n "$BASE_IMAGE_GIVEN" ]; then
    BUILD_ARGS+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  fi
}

cmd_build() {
  local tag svc start
  tag=$(image_tag)
  build_args
  for svc in $(services_or_all "$@"); do
    start=$SECONDS
    "$ENGINE" "${BUILD_ARGS[@]}" --target "$svc" -t "hashstack/$svc:$tag" "$CONTEXT"
    echo "built hashstack/$svc:$tag in $((SECONDS - start)) s"
    check_size "hashstack/$svc:$tag"
  done
}

# TLS for a push to REGISTRY: off for localhost/127.0.0.1 (plain-HTTP local registries).
tls_verify() {
  case $1 in
    localhost:* | localhost | 127.0.0.1:* | 127.0.0.1) echo "${TLS_VERIFY:-false}" ;;
    *) echo "${TLS_VERIFY:-true}" ;;
  esac
}

# push_ref REF: push one reference, print "pushed REF@DIGEST".
push_ref() {
  local ref=$1 registry=${1%%/*} digestfile
  if [ "$ENGINE" = podman ]; then
    digestfile=$(mktemp)
    podman push --quiet --tls-verify="$(tls_verify "$registry")" --digestfile "$digestfile" "$ref"
    echo "pushed $ref@$(cat "$digestfile")"
    rm -f "$digestfile"
  else
    docker push "$ref"
  fi
}

# Skaffold's custom-builder contract (https://skaffold.dev/docs/builders/builder-types/custom/):
# run with the artifact's context as working directory and $IMAGE (the full reference to
# build), $PUSH_IMAGE (true: push it; skaffold then reads its digest from the registry; false:
# skaffold asks the local Docker API, e.g. podman's socket, for the image id), $BUILD_CONTEXT
# (absolute path of the context) and $PLATFORMS (empty or the target platforms).
cmd_skaffold() {
  local svc=${1:?usage: ci/images.sh skaffold SERVICE (run by skaffold with IMAGE, PUSH_IMAGE, BUILD_CONTEXT)}
  local image=${IMAGE:?ci/images.sh skaffold: IMAGE is not set (skaffold sets it)}
  local start=$SECONDS platform=()
  svc=$(services_or_all "$svc")
  CONTEXT=${BUILD_CONTEXT:?ci/images.sh skaffold: BUILD_CONTEXT is not set (skaffold sets it)}
  case ${PLATFORMS:-} in
    "") ;;
    *,*)
      echo "ci/images.sh skaffold: one platform at a time, not $PLATFORMS (the offline base is one platform)" >&2
      exit 2
      ;;
    *) platform=(--platform "$PLATFORMS") ;;
  esac
  case ${PUSH_IMAGE:-false} in
    true | false) ;;
    *) echo "ci/images.sh skaffold: PUSH_IMAGE must be true or false, not $PUSH_IMAGE" >&2; exit 2 ;;
  esac
  build_args
  "$ENGINE" "${BUILD_ARGS[@]}" "${platform[@]}" --target "$svc" -t "$image" "$CONTEXT"
  echo "built $image in $((SECONDS - start)) s"
  check_size "$image"
  [ "${PUSH_IMAGE:-false}" = false ] || push_ref "$image"
}

cmd_push() {
  local registry=${1:?usage: ci/images.sh push REGISTRY [SERVICE...]}
  shift
  local tag svc target
  tag=$(image_tag)
  for svc in $(services_or_all "$@"); do
    target="$registry/hashstack/$svc:$tag"
    "$ENGINE" tag "hashstack/$svc:$tag" "$target"
    push_ref "$target"
  done
}

cmd_registry() {
  local addr=${1:-127.0.0.1:5000}
  local data="$HASHSTACK_CACHE/registry"
  mkdir -p "$data"
  echo "registry on $addr, data in $data (Ctrl-C stops it)"
  REGISTRY_HTTP_ADDR=$addr REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=$data \
    exec docker-registry serve ci/images/registry.yml
}

[ $# -gt 0 ] || usage
command=$1
shift
case $command in
  build) cmd_build "$@" ;;
  push) cmd_push "$@" ;;
  base) cmd_base ;;
  wheelhouse) cmd_wheelhouse ;;
  testimages) ci/images/testimages.sh "$@" ;;
  registry) cmd_registry "$@" ;;
  tag) image_tag ;;
  skaffold) cmd_skaffold "$@" ;;
  *) usage ;;
esac
