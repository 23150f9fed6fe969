#!/usr/bin/env bash
# The test command behind `make test`, `make test-fast` and .ci/run: installs what the tests
# need, then runs pytest once (extra arguments go to pytest; none: every rung under tests/).
# --durations lists the slowest tests, so a slow one shows in every run's output.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
ci/install-deps.sh
ci/install-tools.sh
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests)
exec pytest --durations=25 --durations-min=1.0 "${args[@]}"
