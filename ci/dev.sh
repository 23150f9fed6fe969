#!/usr/bin/env bash
# `make dev`: the inner loop with skaffold (skaffold.yaml). Builds hello, persistence and hash,
# deploys the chart as release hashstack in namespace hashstack, syncs every edited
# images/hashstack/**/*.py into the pods (gunicorn reloads), forwards hash to 127.0.0.1:8080 and
# hello to 127.0.0.1:8081, and removes the release again on Ctrl-C.
#
#   ci/dev.sh [SKAFFOLD_ARGS...]     e.g. ci/dev.sh --tail=false
#
# On kind, k3d and minikube the images are loaded into the cluster (profile kind, active by
# itself). Elsewhere give a registry: ci/dev.sh --default-repo=REGISTRY/hashstack, or use the
# chart's own registry with `ci/registry-flow.sh dev`.
#
# The engine: Docker when `docker info` answers (skaffold's docker builder); otherwise podman
# with the profile podman (skaffold's custom builder runs ci/images.sh: the local offline base
# and wheelhouse, no Docker Hub), with DOCKER_HOST at podman's Docker API socket when one is
# there (skaffold asks it for the id of an image it does not push). It says which it uses.
#
# Every pod template keeps one run id (--label skaffold.dev/run-id=hashstack-dev): skaffold
# labels pod templates with a new run id per invocation otherwise, so each `skaffold dev`
# replaced every pod (etcd's included) even when no image changed.
#
# Environment: SKAFFOLD   the skaffold binary (default: skaffold on PATH; v2.19 or newer)
#              DEV_ENGINE auto (default), docker or podman
#              DRY_RUN=1  print the skaffold command instead of running it
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

SKAFFOLD=${SKAFFOLD:-skaffold}
if ! command -v "$SKAFFOLD" >/dev/null 2>&1; then
  cat >&2 <<'MSG'
make dev: skaffold is not installed (needs v2.19 or newer, which drives Helm 4).
  Install it: https://skaffold.dev/docs/install/ (one static binary on your PATH), then run
  `make dev` again. docs/development.md ("The inner loop") has the steps for kind and minikube.
  Without skaffold, `make deploy` builds the images and installs the chart with helm.
MSG
  exit 127
fi
if ! command -v helm >/dev/null 2>&1; then
  echo "make dev: skaffold deploys with helm, which is missing: run ci/install-tools.sh" >&2
  exit 127
fi
engine=${DEV_ENGINE:-auto}
if [ "$engine" = auto ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null 2>&1; then
    engine=podman
  else
    echo "make dev: neither a Docker daemon nor podman here: install one (docs/development.md)" >&2
    exit 127
  fi
fi
args=(dev --label=skaffold.dev/run-id=hashstack-dev)
case $engine in
  docker)
    echo "make dev: building with Docker ($(docker context show 2>/dev/null || echo default)): skaffold's docker builder" >&2
    ;;
  podman)
    args+=(--profile=podman)
    if [ -z "${DOCKER_HOST:-}" ]; then
      for socket in "${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock" /run/podman/podman.sock; do
        if [ -S "$socket" ]; then
          export DOCKER_HOST="unix://$socket"
          break
        fi
      done
    fi
    echo "make dev: building with podman through ci/images.sh (profile podman," \
      "OFFLINE=${OFFLINE:-1}); Docker API for skaffold: ${DOCKER_HOST:-none}" >&2
    context=$(kubectl config current-context 2>/dev/null || true)
    if [[ $context == kind-* ]] && ! command -v docker >/dev/null 2>&1; then
      echo "make dev: $context: skaffold loads images with \`kind load docker-image\`, which runs" \
        "the docker command: install podman's (Debian: podman-docker), or push through kind's" \
        "registry (docs/development.md, \"kind with podman\")" >&2
    fi
    if [ -z "${DOCKER_HOST:-}" ]; then
      echo "make dev: no podman socket: a cluster that loads images needs one" \
        "(systemctl --user enable --now podman.socket, or as root: systemctl enable --now" \
        "podman.socket); pushing to a registry (--default-repo) does not" >&2
    fi
    ;;
  *) echo "make dev: DEV_ENGINE must be auto, docker or podman, not $engine" >&2; exit 2 ;;
esac
if [ "${DRY_RUN:-0}" = 1 ]; then
  printf '%q ' "$SKAFFOLD" "${args[@]}" "$@"
  echo
  exit 0
fi
exec "$SKAFFOLD" "${args[@]}" "$@"
