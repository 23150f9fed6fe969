#!/usr/bin/env bash
# The test command behind `make test` and .ci/run: installs what the tests need,
# then runs pytest once over every rung (extra arguments go to pytest).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
ci/install-deps.sh
ci/install-tools.sh
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests)
exec pytest "${args[@]}"
