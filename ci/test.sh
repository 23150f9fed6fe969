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
# pytest-xdist: PYTEST_WORKERS processes (0: none). The tests that start etcd members or
# containers keep to one lane per kind (tests/support/markers.py), so two of a kind never
# compete for the machine; everything else spreads over all workers.
workers=${PYTEST_WORKERS:-2}
parallel=()
[ "$workers" = 0 ] || parallel=(--numprocesses "$workers" --dist loadgroup)
exec pytest "${parallel[@]}" --durations=25 --durations-min=1.0 "${args[@]}"
