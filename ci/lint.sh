#!/usr/bin/env bash
# `make lint`, .ci/run and the workflow's lint job: ruff (check and format), mypy, shellcheck,
# hadolint (images/Dockerfile), yamllint, helm lint --strict and checkov on the chart as
# `helm template` renders it (ci/checkov.yaml lists the declined checks and why).
# Runs every linter, then fails if any of them failed. The tests do not run it again.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

failed=()
lint_step() {
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

# The chart as `helm template` renders it with its default values, scanned by checkov.
scan_rendered_chart() {
  local tmp checkov status=0
  checkov=$(ci/install-checkov.sh) || return 1
  tmp=$(mktemp -d)
  helm template hashstack charts/hashstack --namespace hashstack >"$tmp/chart.yaml" &&
    "$checkov" --config-file ci/checkov.yaml -d "$tmp" || status=$?
  rm -rf "$tmp"
  return "$status"
}

mapfile -t scripts < <(shell_scripts)
lint_step "ruff check" ruff check .
lint_step "ruff format" ruff format --check .
lint_step mypy mypy
# -x -P SCRIPTDIR: follow `source "$(dirname "$0")/env.sh"` next to each script.
lint_step shellcheck shellcheck -x -P SCRIPTDIR "${scripts[@]}"
lint_step yamllint yamllint --format parsable .
lint_step hadolint hadolint images/Dockerfile
if [ -f charts/hashstack/Chart.yaml ]; then
  lint_step "helm lint" helm lint --strict charts/hashstack
  lint_step checkov scan_rendered_chart
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all clean" >&2
