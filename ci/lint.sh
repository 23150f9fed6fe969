#!/usr/bin/env bash
# `make lint` and the workflow's lint job: ruff (check and format), mypy, shellcheck,
# yamllint and helm lint --strict. Runs every linter, then fails if any of them failed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

failed=()
run() {
  local name=$1
  shift
  echo "lint: $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

# Every shell script CI runs: ci/*.sh, ci/**/*.sh and .ci/run.
shell_scripts() {
  find ci -name '*.sh' -type f | sort
  echo .ci/run
}

mapfile -t scripts < <(shell_scripts)
run "ruff check" ruff check .
run "ruff format" ruff format --check .
run mypy mypy
# -x -P SCRIPTDIR: follow `source "$(dirname "$0")/env.sh"` next to each script.
run shellcheck shellcheck -x -P SCRIPTDIR "${scripts[@]}"
run yamllint yamllint --format parsable .
if [ -f charts/hashstack/Chart.yaml ]; then
  run "helm lint" helm lint --strict charts/hashstack
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all clean" >&2
