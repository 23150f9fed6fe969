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

# etcdctl against the cluster's client Service (CLUSTER_ENDPOINTS). A script that must give up
# sooner sets CTL_DIAL_TIMEOUT and CTL_COMMAND_TIMEOUT first.
ctl() {
  etcdctl --endpoints="$CLUSTER_ENDPOINTS" --dial-timeout="${CTL_DIAL_TIMEOUT:-3s}" \
    --command-timeout="${CTL_COMMAND_TIMEOUT:-10s}" "$@"
}

# A linearizable read of SIZE_KEY answers only with a leader and a quorum behind it. (Not
# `endpoint health`: it asks every endpoint given, and fails when any one of them is down.)
cluster_healthy() { ctl get "$SIZE_KEY" >/dev/null 2>&1; }
