#!/usr/bin/env bash
# `make bench` and `make bench-update`: starts etcd and the services on 127.0.0.1 and measures
# them with wrk (benchmarks/run.py). Every run writes to benchmarks/results/ (untracked);
# --update (make bench-update) also copies it to the committed benchmarks/latest.{json,md,png}
# and the figures in docs/benchmarks.md.
# Extra arguments go to the benchmark (--quick for a one-round smoke run).
# --devloop (make bench-devloop): the inner loop's steps instead (benchmarks/devloop.py: podman).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
if [ "${1:-}" = --devloop ]; then
  shift
  exec python -m benchmarks.devloop "$@"
fi
ci/install-deps.sh --only etcd-server wrk
exec python -m benchmarks "$@"
