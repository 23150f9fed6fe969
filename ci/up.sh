#!/usr/bin/env bash
# `make up`: etcd and the three services on 127.0.0.1 until Ctrl-C (extra args: ci/localstack.py up --help).
# MONITORING=1: Prometheus too, on 127.0.0.1:9090, scraping them as the chart's ServiceMonitors say.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
if [ "${MONITORING:-0}" = 1 ]; then
  ci/install-deps.sh --only prometheus
  ci/install-tools.sh >/dev/null  # helm renders the chart's ServiceMonitors and rules
  set -- --monitoring "$@"
fi
exec python ci/localstack.py up "$@"
