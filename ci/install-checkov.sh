#!/usr/bin/env bash
# checkov (the Kubernetes policy scan `make lint` runs on the rendered chart) in a venv of its
# own under $HASHSTACK_CACHE: its many dependencies would fight the test pins in
# requirements-dev.txt. Idempotent; prints the checkov binary's path.
set -euo pipefail
source "$(dirname "$0")/env.sh"

CHECKOV_VERSION="3.3.30"
venv="$HASHSTACK_CACHE/checkov"
stamp="$venv/.installed-$CHECKOV_VERSION"
if [ ! -f "$stamp" ]; then
  echo "install-checkov: pip install checkov==$CHECKOV_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$stamp"
fi
echo "$venv/bin/checkov"
