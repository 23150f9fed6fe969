# shellcheck shell=bash
# Sourced by every ci/ script and the Makefile recipes: one place for paths and tool settings.
HASHSTACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export HASHSTACK_ROOT
export HASHSTACK_CACHE="${HASHSTACK_CACHE:-$HASHSTACK_ROOT/.cache}"
export VENV="${VENV:-$HASHSTACK_ROOT/.venv}"
export PATH="$VENV/bin:$HASHSTACK_CACHE/bin:$PATH"
# podman and buildah read this instead of /etc: runc, cgroupfs and ulimits that work here.
export CONTAINERS_CONF="$HASHSTACK_ROOT/ci/containers.conf"
# etcd3 0.12 needs protobuf's pure-Python implementation (see images/hashstack/etcd_counter.py).
export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python

# Messages and the dry-run switch the ci/ scripts share: "<script>: message" on stderr;
# with DRY_RUN=1, run prints the command instead of running it.
log() { echo "${LOG_PREFIX:-$(basename "$0" .sh)}: $*" >&2; }
die() {
  log "$*"
  exit 1
}
run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}
# The script's header comment (line 2 up to `set -euo`) as its help, on stderr; exits 2.
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# A clean copy of the chart at DEST for `helm package`: the vendored subchart directories are
# its dependencies, so no stale archives in charts/.
chart_copy() {
  local dest=${1:?usage: chart_copy DEST}
  cp -r "$HASHSTACK_ROOT/charts/hashstack" "$dest"
  rm -f "$dest"/charts/*.tgz
}

# python3 can import yaml (ci/version.py, ci/rendered.py, ci/bundle.sh): the venv's when it is
# there, else PyYAML at the version requirements-dev.txt pins.
need_pyyaml() {
  python3 -c 'import yaml' 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check \
      "$(grep -i '^pyyaml==' "$HASHSTACK_ROOT/requirements-dev.txt")"
}
