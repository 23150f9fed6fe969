#!/usr/bin/env bash
# `make deploy`: build the three images from this tree and install the chart as release
# $RELEASE in namespace $NAMESPACE on the current kube context, production-like (no file sync,
# no reload, no port-forward).
#
#   ci/deploy.sh [SKAFFOLD_ARGS...]
#
# With skaffold: `skaffold run -p $DEPLOY_PROFILE` (default prod). On kind, k3d and minikube the
#   images are loaded into the nodes; on any other cluster give a registry to push to, e.g.
#   SKAFFOLD_DEFAULT_REPO=ghcr.io/you/hashstack ci/deploy.sh (the images are pinned by digest).
#   skaffold.yaml fixes the release (hashstack) and namespace (hashstack).
# Without skaffold: `ci/registry-flow.sh helm`: images from `make images` (ci/images.sh build,
#   tagged with the git revision) are pushed to the chart's own registry and installed with
#   `helm upgrade --install` (RELEASE and NAMESPACE apply).
#
# Environment: SKAFFOLD (binary, default skaffold), DEPLOY_PROFILE (default prod),
#   RELEASE, NAMESPACE (default hashstack), DRY_RUN=1 (print the commands, run none).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

SKAFFOLD=${SKAFFOLD:-skaffold}
DEPLOY_PROFILE=${DEPLOY_PROFILE:-prod}

if command -v "$SKAFFOLD" >/dev/null 2>&1; then
  cmd=("$SKAFFOLD" run -p "$DEPLOY_PROFILE" "$@")
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
  fi
  exec "${cmd[@]}"
fi

echo "deploy: skaffold not found: helm upgrade --install with the images of \`make images\`" >&2
if [ $# -gt 0 ]; then
  echo "deploy: arguments are for skaffold, which is missing: $*" >&2
  exit 2
fi
exec ci/registry-flow.sh helm
