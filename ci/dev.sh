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
# Environment: SKAFFOLD   the skaffold binary (default: skaffold on PATH; v2.19 or newer)
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
exec "$SKAFFOLD" dev "$@"
