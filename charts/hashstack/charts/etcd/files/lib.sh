# shellcheck shell=bash
# Helpers the chart puts in front of each of its scripts when it renders them (templates:
# etcd.script). Bash built-ins only: the etcd image has nothing else.

# "<script>: message" on stderr; the name is the script's ($0: /scripts/entrypoint.sh, or
# the Job's component given to `sh -c`).
log() {
  local name=${0##*/}
  printf '%s: %s\n' "${name%.sh}" "$*" >&2
}

# sleep is not a built-in: wait on a pipe that never delivers.
exec 9<> <(:)
pause() { read -rt "$1" -u 9 || :; }
