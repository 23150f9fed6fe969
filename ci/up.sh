#!/usr/bin/env bash
# `make up`: etcd and the three services on 127.0.0.1 until Ctrl-C (extra args: ci/localstack.py up --help).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"
exec python ci/localstack.py up "$@"
