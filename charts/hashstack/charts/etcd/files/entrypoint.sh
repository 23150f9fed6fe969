#!/bin/sh
# shellcheck shell=bash
# Starts one etcd member of the StatefulSet. The etcd image holds a static bash as /bin/sh,
# etcd, etcdctl and etcdutl and nothing else: this script uses bash built-ins only.
#
# Nothing here depends on the StatefulSet's size; the pod learns the cluster at runtime:
#   CLUSTER_ENDPOINTS        client URLs that reach the running cluster (the client Service)
#   CLUSTER_STATE            "new" only in the release's first install, "existing" ever after
#   BOOTSTRAP_MEMBERS        size of the cluster the first install bootstraps
#   MEMBER_PEER_URL_PATTERN  a member's peer URL, @NAME@ standing for its pod name
#                            (@ORDINAL@ for its ordinal)
#   SIZE_KEY                 key where the membership hook records the wanted member count
#
# With member data:    restart with it. If the cluster answers and no longer lists this member
#                      (it was removed on a scale down), start over in a fresh data directory.
# Without member data: join the running cluster as a learner (replacing this member's old
#                      entry when its volume was lost), then promote itself once caught up.
#                      Only CLUSTER_STATE=new with no healthy cluster bootstraps, with the
#                      first install's members. Otherwise, with no cluster answering, it waits
#                      and exits non-zero: the kubelet restarts it; it never starts a cluster.
set -u

: "${ETCD_NAME:?}" "${ETCD_DATA_DIR:?}" "${ETCD_INITIAL_ADVERTISE_PEER_URLS:?}"
: "${CLUSTER_ENDPOINTS:?}" "${CLUSTER_STATE:?}" "${BOOTSTRAP_MEMBERS:?}"
: "${MEMBER_PEER_URL_PATTERN:?}" "${SIZE_KEY:?}"
attempts=${JOIN_ATTEMPTS:-30}

my_peer=$ETCD_INITIAL_ADVERTISE_PEER_URLS
ordinal=${ETCD_NAME##*-}
statefulset=${ETCD_NAME%-*}
data_root=${ETCD_DATA_DIR%/*}
# Set when a scale down removed this member: the name of the data directory now in use.
data_pointer=$data_root/data-dir

# A starting member gives up on the cluster sooner than the jobs do.
# shellcheck disable=SC2034 # read by ctl (lib.sh)
CTL_DIAL_TIMEOUT=2s CTL_COMMAND_TIMEOUT=5s

# members: etcdctl's simple output, one "ID, status, name, peer, client, learner" a line.
list_members() {
  members=$(ctl member list 2>/dev/null) && [ -n "$members" ]
}

# Sets my_id, my_status, my_learner from $members (empty when this member is not listed).
find_me() {
  my_id="" my_status="" my_learner=""
  local id status name peer learner
  while IFS=', ' read -r id status name peer _ learner; do
    if [ -n "$id" ] && [ "$peer" = "$my_peer" ]; then
      my_id=$id my_status=$status my_learner=$learner
    fi
  done <<<"$members"
}

# The member count the release wants (empty: not recorded yet). Needs a quorum.
wanted_size() {
  size=$(ctl get --print-value-only "$SIZE_KEY" 2>/dev/null) || return 1
}

# True when the release is scaling this ordinal away: it must not (re)join.
scaled_away() {
  [ -n "$size" ] && [ "$ordinal" -ge "$size" ]
}

use_data_dir() {
  ETCD_DATA_DIR=$data_root/$1
  export ETCD_DATA_DIR
}

# Old data stays on the volume (no rm in the image); the member starts in a new directory.
fresh_data_dir() {
  local now
  printf -v now '%(%s)T' -1
  log "$1: leaving $ETCD_DATA_DIR behind, starting over in $data_root/data-$now"
  printf '%s\n' "data-$now" >"$data_pointer"
  use_data_dir "data-$now"
}

peer_url_of() {
  peer_url=${MEMBER_PEER_URL_PATTERN//@NAME@/$statefulset-$1}
  peer_url=${peer_url//@ORDINAL@/$1}
}

# Runs etcd, forwards SIGTERM to it, and promotes this member while it is a learner.
run_etcd() {
  local pid rc try
  etcd &
  pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
  for ((try = 0; try < 900; try++)); do
    pause 1
    kill -0 "$pid" 2>/dev/null || break
    list_members || continue
    find_me
    if [ "$my_learner" = false ]; then break; fi
    if [ "$my_learner" = true ] && ctl member promote "$my_id" >/dev/null 2>&1; then
      log "$ETCD_NAME ($my_id) caught up and is a voting member now"
      break
    fi
  done
  while :; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  exit "$rc"
}

bootstrap() {
  local i cluster=""
  if [ "$ordinal" -ge "$BOOTSTRAP_MEMBERS" ]; then
    log "not one of the $BOOTSTRAP_MEMBERS members the install bootstraps: waiting to join"
    return 1
  fi
  for ((i = 0; i < BOOTSTRAP_MEMBERS; i++)); do
    peer_url_of "$i"
    cluster="${cluster:+$cluster,}$statefulset-$i=$peer_url"
  done
  ETCD_INITIAL_CLUSTER=$cluster ETCD_INITIAL_CLUSTER_STATE=new
  export ETCD_INITIAL_CLUSTER ETCD_INITIAL_CLUSTER_STATE
  log "first install: bootstrapping $ETCD_NAME into the new cluster $cluster"
  run_etcd
}

# Adds this member as a learner (replacing a lost one) and starts it. Returns 1 to retry.
join() {
  if ! wanted_size; then return 1; fi
  if scaled_away; then
    log "the release wants $size members: $ETCD_NAME is being scaled away, not joining"
    return 1
  fi
  find_me
  if [ "$my_status" = started ]; then
    log "$ETCD_NAME ($my_id) is a member but has no data: replacing it"
    ctl member remove "$my_id" >/dev/null || return 1
    my_id=""
  fi
  if [ -z "$my_id" ]; then
    # etcd takes one learner at a time: a second one is refused and retried here.
    ctl member add "$ETCD_NAME" --peer-urls="$my_peer" --learner >/dev/null 2>&1 || return 1
    log "added $ETCD_NAME ($my_peer) to the cluster as a learner"
    list_members || return 1
    find_me
  fi
  local id status name peer learner cluster=""
  while IFS=', ' read -r id status name peer _ learner; do
    if [ -z "$id" ]; then continue; fi
    if [ "$peer" = "$my_peer" ]; then name=$ETCD_NAME; fi
    cluster="${cluster:+$cluster,}${name:-unstarted-$id}=$peer"
  done <<<"$members"
  ETCD_INITIAL_CLUSTER=$cluster ETCD_INITIAL_CLUSTER_STATE=existing
  export ETCD_INITIAL_CLUSTER ETCD_INITIAL_CLUSTER_STATE
  log "joining the running cluster as $ETCD_NAME: $cluster"
  run_etcd
}

if [ -f "$data_pointer" ]; then
  read -r dir <"$data_pointer"
  use_data_dir "$dir"
fi

if [ -d "$ETCD_DATA_DIR/member/wal" ]; then
  if list_members && cluster_healthy && wanted_size; then
    find_me
    if [ -z "$my_id" ] && ! scaled_away; then
      fresh_data_dir "the cluster no longer lists $ETCD_NAME"
    elif [ -z "$my_id" ]; then
      log "the cluster removed $ETCD_NAME and the release wants $size members: not starting"
      exit 1
    fi
  fi
  if [ -d "$ETCD_DATA_DIR/member/wal" ]; then
    log "member data found in $ETCD_DATA_DIR: restarting $ETCD_NAME with it"
    run_etcd
  fi
fi

for ((try = 1; try <= attempts; try++)); do
  if list_members && cluster_healthy; then
    join
  elif [ "$CLUSTER_STATE" = new ]; then
    bootstrap
  fi
  pause 2
done
log "no healthy cluster to join after $attempts attempts: exiting for the kubelet to retry"
exit 1
