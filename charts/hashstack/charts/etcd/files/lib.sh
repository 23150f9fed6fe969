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

# etcdctl against one URL instead of the client Service.
ctl_at() {
  local CLUSTER_ENDPOINTS=$1
  shift
  ctl "$@"
}

# True when etcdctl's last word on ENDPOINTS (its stderr, in $1) is that the name does not
# resolve: the Service, or the pod behind a member's name, does not exist.
unresolved() { [[ $1 == *"no such host"* ]]; }

# A member without data that waits to bootstrap runs a throwaway single-member etcd, its
# "lobby", reachable at MEMBER_LOBBY_URL_PATTERN and holding LOBBY_KEY = "without-data NAME
# TOKEN BOOTSTRAP_MEMBERS". Members with data never run one (entrypoint.sh, docs/etcd.md).
LOBBY_KEY=/hashstack-etcd/lobby

# shellcheck disable=SC2034 # lobby and lobby_error are read by the scripts
# lobby_says URL: sets $lobby to what the lobby at URL holds, or returns 1 with $lobby_error
# saying why none answers (2 when the member's name does not resolve: it has no pod). Plain
# http whatever tls.enabled says: a lobby holds that line only.
lobby_says() {
  local out
  lobby="" lobby_error=""
  if out=$(
    unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
    CTL_DIAL_TIMEOUT=1s CTL_COMMAND_TIMEOUT=2s
    ctl_at "$1" get --print-value-only "$LOBBY_KEY" 2>&1
  ); then
    lobby=${out%%$'\n'*}
    return 0
  fi
  if unresolved "$out"; then
    lobby_error="its name does not resolve (no pod)"
    return 2
  elif [[ $out == *"connection refused"* ]]; then
    lobby_error="nothing answers on its lobby port"
  else
    lobby_error="its lobby does not answer"
  fi
  return 1
}

# shellcheck disable=SC2034 # lobby_url is read by the scripts
# URL of member ORDINAL's lobby ($lobby_url), from MEMBER_LOBBY_URL_PATTERN.
lobby_url_of() {
  lobby_url=${MEMBER_LOBBY_URL_PATTERN//@NAME@/$STATEFULSET_NAME-$1}
  lobby_url=${lobby_url//@ORDINAL@/$1}
}
