#!/bin/sh
# shellcheck shell=bash
# Runs before every upgrade and rollback (a Helm hook Job), before the StatefulSet changes;
# under Argo CD (PreSync) before every sync, the first included:
#   1. records the member count the release wants under SIZE_KEY; a member whose ordinal is
#      beyond it never joins or rejoins (see entrypoint.sh), so a member being scaled away
#      cannot come back while its pod still runs;
#   2. removes from the cluster every member that is not one of ordinals 0..REPLICAS-1,
#      one at a time, learners first, each time only from a healthy cluster.
# Scaling up needs nothing more: each new pod adds itself as a learner (see entrypoint.sh).
# Built-ins, etcdctl and etcdutl only, as in the entrypoint. When no cluster exists yet (the
# client Service's name does not resolve; or no member holds data: each either has no pod or
# waits in its lobby) there is nothing to resize: it says so and exits 0. Otherwise it exits
# non-zero (failing the upgrade before anything changed) when the cluster does not answer.
set -u

: "${CLUSTER_ENDPOINTS:?}" "${REPLICAS:?}" "${STATEFULSET_NAME:?}" "${MAX_MEMBERS:?}"
: "${MEMBER_PEER_URL_PATTERN:?}" "${MEMBER_LOBBY_URL_PATTERN:?}" "${SIZE_KEY:?}"

# Retries a command for up to a minute: leader elections after a removal take a moment.
retry() {
  local try
  for ((try = 1; try <= 30; try++)); do
    if "$@"; then return 0; fi
    pause 2
  done
  log "gave up: $*"
  return 1
}

declare -A keep=()
for ((i = 0; i < REPLICAS; i++)); do
  url=${MEMBER_PEER_URL_PATTERN//@NAME@/$STATEFULSET_NAME-$i}
  keep[${url//@ORDINAL@/$i}]=1
done

# True when no member can hold data: every ordinal a member can have either has no pod (its
# name does not resolve) or runs a lobby (a member without data waiting to bootstrap).
# shellcheck disable=SC2154 # lobby_url, lobby: set by lib.sh
no_member_holds_data() {
  local i
  for ((i = 0; i < MAX_MEMBERS; i++)); do
    lobby_url_of "$i"
    lobby_says "$lobby_url"
    case $? in
      0) [[ $lobby == "without-data $STATEFULSET_NAME-$i "* ]] || return 1 ;;
      2) ;;
      *) return 1 ;;
    esac
  done
}

if ! out=$(CTL_DIAL_TIMEOUT=2s CTL_COMMAND_TIMEOUT=3s ctl get "$SIZE_KEY" 2>&1 >/dev/null); then
  if unresolved "$out"; then
    log "no cluster yet (the client Service's name does not resolve): nothing to resize"
    exit 0
  elif no_member_holds_data; then
    log "no cluster yet (no member holds data: each has no pod or waits to bootstrap): nothing to resize"
    exit 0
  fi
fi
retry cluster_healthy || exit 1
ctl put "$SIZE_KEY" "$REPLICAS" >/dev/null || exit 1
log "the release wants $REPLICAS members"

# etcd refuses a removal that would leave fewer healthy members than a quorum, and counts a
# member as healthy after 5 s of connection: a just-promoted member needs a moment.
remove_member() {
  local members
  ctl member remove "$1" >/dev/null 2>&1 && return 0
  members=$(ctl member list) || return 1
  [[ $members != *"$1"* ]]
}

# remove_extra LEARNER: removes the members not kept whose learner column is LEARNER.
remove_extra() {
  local members id name peer learner voters=0
  members=$(ctl member list) || return 1
  while IFS=', ' read -r id _ name peer _ learner; do
    if [ -n "$id" ] && [ -n "${keep[$peer]:-}" ] && [ "$learner" = false ]; then
      voters=$((voters + 1))
    fi
  done <<<"$members"
  if [ "$voters" -eq 0 ]; then
    log "no voting member among ordinals 0..$((REPLICAS - 1)): refusing to remove the others"
    return 1
  fi
  while IFS=', ' read -r id _ name peer _ learner; do
    if [ -z "$id" ] || [ -n "${keep[$peer]:-}" ] || [ "$learner" != "$1" ]; then continue; fi
    log "removing ${name:-an unstarted member} ($id, $peer)"
    retry remove_member "$id" || return 1
  done <<<"$members"
}

remove_extra true || exit 1
remove_extra false || exit 1
retry cluster_healthy || exit 1
log "done: $(ctl member list | while read -r line; do printf '[%s] ' "$line"; done)"
