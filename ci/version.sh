#!/usr/bin/env bash
# ci/version.py for jobs without the project's venv (the release and version-bump jobs): the one
# package it needs, PyYAML, at the version requirements-dev.txt pins, then the script itself.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
need_pyyaml
exec python3 ci/version.py "$@"
