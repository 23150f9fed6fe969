#!/usr/bin/env bash
# `make bench` and `make bench-update`: starts etcd and the services on 127.0.0.1 and measures
# them with wrk (benchmarks/run.py). Every run writes to benchmarks/results/ (untracked);
# --update (make bench-update) also copies it to the committed benchmarks/latest.{json,md,png}
# and the figures in docs/benchmarks.md.
# Extra arguments go to the benchmark (--quick for a one-round smoke run).
# --footprint (make bench-footprint) measures instead what each of the chart's pods uses idle,
# lightly used and saturated (benchmarks/footprint.py): the figures behind its requests.
# --devloop (make bench-devloop): the inner loop's steps instead (benchmarks/devloop.py: podman).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
case "${1:-}" in
  --footprint)
    shift
    ci/install-deps.sh --only etcd-server wrk docker-registry haproxy
    exec python -m benchmarks.footprint "$@"
    ;;
  --devloop)
    shift
    exec python -m benchmarks.devloop "$@"
    ;;
esac
ci/install-deps.sh --only etcd-server wrk
# The service images (cached layers: seconds when nothing changed) and the test etcd image, for the
# start -> /readyz and pull figures; without podman those are left out, with a warning.
if command -v podman >/dev/null; then
  BENCH_IMAGES_TAG=${TAG:-$(ci/images.sh tag)}
  TAG=$BENCH_IMAGES_TAG ci/images.sh build >/dev/null
  ci/images.sh testimages etcd >/dev/null
  export BENCH_IMAGES_TAG
fi
exec python -m benchmarks "$@"
