#!/bin/sh
# shellcheck shell=bash
# shellcheck disable=SC2154 # lobby, lobby_url, lobby_error: set by lib.sh
# Starts one etcd member of the StatefulSet. The etcd image holds a static bash as /bin/sh,
# etcd, etcdctl and etcdutl and nothing else: this script uses bash built-ins only.
#
# Nothing here depends on the StatefulSet's size; whether `helm template` + apply (Argo CD)
# or helm deployed it, the pod learns the cluster at runtime:
#   CLUSTER_ENDPOINTS        client URLs that reach the running cluster (the client Service)
#   CLUSTER_STATE            "auto" (decide from the peers, below: helm install, helm
#                            template), "existing" (never bootstrap: a helm upgrade, or the
#                            override) or "new" (a deliberate bootstrap, the override)
#   BOOTSTRAP_MEMBERS        size of the cluster a bootstrap forms (the release's replicaCount)
#   MEMBER_PEER_URL_PATTERN  a member's peer URL, @NAME@ standing for its pod name
#                            (@ORDINAL@ for its ordinal); MEMBER_LOBBY_URL_PATTERN its lobby's
#   LOBBY_LISTEN_CLIENT_URL, LOBBY_PEER_URL, LOBBY_DATA_DIR   where this member's lobby runs
#   SIZE_KEY                 key where the membership hook records the wanted member count
#
# With member data:    restart with it. If the cluster answers and no longer lists this member
#                      (it was removed on a scale down), start over in a fresh data directory.
# Without member data: join the running cluster as a learner (replacing this member's old
#                      entry when its volume was lost), then promote itself once caught up.
#                      With no healthy cluster answering, a bootstrap needs positive evidence
#                      that no member holds data: this member opens its lobby (it has no
#                      data) and bootstraps only when the lobbies of all BOOTSTRAP_MEMBERS
#                      members answer, each saying the same. A member with data never opens
#                      one, so while any member of the set holds data (crash-looping, slow,
#                      partitioned) nobody bootstraps: the members wait and log who does not
#                      confirm. Formation is unanimous, never by a quorum of the dataless.
#                      CLUSTER_STATE=new bootstraps without asking (ordinals below
#                      BOOTSTRAP_MEMBERS); "existing" only ever joins.
set -u

: "${ETCD_NAME:?}" "${ETCD_DATA_DIR:?}" "${ETCD_INITIAL_ADVERTISE_PEER_URLS:?}"
: "${CLUSTER_ENDPOINTS:?}" "${CLUSTER_STATE:?}" "${BOOTSTRAP_MEMBERS:?}"
: "${MEMBER_PEER_URL_PATTERN:?}" "${SIZE_KEY:?}" "${ETCD_INITIAL_CLUSTER_TOKEN:?}"
attempts=${JOIN_ATTEMPTS:-30}

my_peer=$ETCD_INITIAL_ADVERTISE_PEER_URLS
ordinal=${ETCD_NAME##*-}
statefulset=${ETCD_NAME%-*}
# shellcheck disable=SC2034 # read by lobby_url_of (lib.sh)
STATEFULSET_NAME=$statefulset
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

# Sets my_id, my_status, my_client, my_learner from $members (empty when this member is not
# listed). A member of a bootstrap that never started is listed by name, with no client URL.
find_me() {
  my_id="" my_status="" my_client="" my_learner=""
  local id status name peer client learner
  while IFS=', ' read -r id status name peer client learner; do
    if [ -n "$id" ] && [ "$peer" = "$my_peer" ]; then
      my_id=$id my_status=$status my_client=$client my_learner=$learner
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
  # A bootstrapping member keeps its lobby open until the new cluster has a quorum, so the
  # members of its bootstrap set that are still deciding see the same unanimous answer. Its
  # own etcd serves a (local, serializable) read only once it has joined that quorum: then
  # it closes the lobby at once, before it could hold data the lobby would deny.
  while [ -n "$lobby_pid" ] && kill -0 "$pid" 2>/dev/null; do
    if CTL_DIAL_TIMEOUT=1s CTL_COMMAND_TIMEOUT=1s ctl_at "$ETCD_ADVERTISE_CLIENT_URLS" \
      get --consistency=s "$SIZE_KEY" >/dev/null 2>&1; then
      close_lobby "the new cluster has a quorum"
    else
      pause 0.2
    fi
  done
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

# Bootstraps this member into a new cluster of ordinals 0..BOOTSTRAP_MEMBERS-1 ($1: why).
bootstrap() {
  local i cluster=""
  for ((i = 0; i < BOOTSTRAP_MEMBERS; i++)); do
    peer_url_of "$i"
    cluster="${cluster:+$cluster,}$statefulset-$i=$peer_url"
  done
  ETCD_INITIAL_CLUSTER=$cluster ETCD_INITIAL_CLUSTER_STATE=new
  export ETCD_INITIAL_CLUSTER ETCD_INITIAL_CLUSTER_STATE
  log "$1: bootstrapping $ETCD_NAME into the new cluster $cluster"
  run_etcd
}

# --- the lobby ---------------------------------------------------------------------------

lobby_pid=""
lobby_value="without-data $ETCD_NAME $ETCD_INITIAL_CLUSTER_TOKEN $BOOTSTRAP_MEMBERS"

# Starts this member's lobby (a single-member etcd in LOBBY_DATA_DIR, an emptyDir) and writes
# LOBBY_KEY into it. Only ever called without member data. Returns 1 while it is not up.
open_lobby() {
  local try token="lobby-$ETCD_NAME"
  if [ -n "$lobby_pid" ] && kill -0 "$lobby_pid" 2>/dev/null; then return 0; fi
  lobby_url_of "$ordinal"
  (
    # The pod's ETCD_* variables are the member's flags: none of them is the lobby's.
    for var in "${!ETCD_@}"; do unset "$var"; done
    exec etcd --name lobby --data-dir "$LOBBY_DATA_DIR" --log-level error \
      --listen-client-urls "$LOBBY_LISTEN_CLIENT_URL" --advertise-client-urls "$lobby_url" \
      --listen-peer-urls "$LOBBY_PEER_URL" --initial-advertise-peer-urls "$LOBBY_PEER_URL" \
      --initial-cluster "lobby=$LOBBY_PEER_URL" --initial-cluster-state new \
      --initial-cluster-token "$token" --unsafe-no-fsync \
      --heartbeat-interval 10 --election-timeout 100 # alone: it elects itself at once
  ) &
  lobby_pid=$!
  for ((try = 0; try < 20; try++)); do
    if (
      unset ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
      ctl_at "$lobby_url" put "$LOBBY_KEY" "$lobby_value" >/dev/null 2>&1
    ); then
      log "no data and no healthy cluster: opened the lobby on $lobby_url ($lobby_value)"
      return 0
    fi
    kill -0 "$lobby_pid" 2>/dev/null || break
    pause 0.5
  done
  close_lobby "it did not come up"
  return 1
}

close_lobby() {
  if [ -z "$lobby_pid" ]; then return 0; fi
  kill -TERM "$lobby_pid" 2>/dev/null
  wait "$lobby_pid" 2>/dev/null
  lobby_pid=""
  log "closed the lobby: $1"
}

# Logs a reason to wait when it changes, and again every 30 tries while it holds.
said="" said_at=0
wait_because() {
  if [ "$1" != "$said" ] || ((try - said_at >= 30)); then
    log "waiting: $1"
    said=$1 said_at=$try
  fi
}

# True when every one of the BOOTSTRAP_MEMBERS members, this one included, runs a lobby that
# says it has no data and expects the same cluster (token and size).
all_without_data() {
  local i want
  if [ "$ordinal" -ge "$BOOTSTRAP_MEMBERS" ]; then
    wait_because "no healthy cluster; not one of the $BOOTSTRAP_MEMBERS members a bootstrap forms, so only joining one"
    return 1
  fi
  open_lobby || return 1
  for ((i = 0; i < BOOTSTRAP_MEMBERS; i++)); do
    want="without-data $statefulset-$i $ETCD_INITIAL_CLUSTER_TOKEN $BOOTSTRAP_MEMBERS"
    lobby_url_of "$i"
    if ! lobby_says "$lobby_url"; then
      wait_because "no healthy cluster, and $statefulset-$i does not confirm it has no data ($lobby_error at $lobby_url): it may hold the cluster's data, so no bootstrap"
      return 1
    elif [ -z "$lobby" ]; then
      return 1 # its lobby just opened: the line follows
    elif [ "$lobby" != "$want" ]; then
      wait_because "no healthy cluster, and the lobby of $statefulset-$i says \"$lobby\", not \"$want\": no bootstrap"
      return 1
    fi
  done
}

# Adds this member as a learner (replacing a lost one) and starts it. Returns 1 to retry.
join() {
  if ! wanted_size; then return 1; fi
  if scaled_away; then
    log "the release wants $size members: $ETCD_NAME is being scaled away, not joining"
    return 1
  fi
  find_me
  if [ "$my_status" = started ] && [ -z "$my_client" ]; then
    log "$ETCD_NAME ($my_id) is a member of the new cluster that never started: starting it"
  elif [ "$my_status" = started ]; then
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

# Without member data: join, or (with unanimous evidence, or clusterState=new) bootstrap.
trap 'close_lobby "the container stops"' EXIT
trap 'exit 143' TERM INT
idle=0
for ((try = 1; ; try++)); do
  if list_members && cluster_healthy; then
    close_lobby "a healthy cluster answers"
    join
  elif [ "$CLUSTER_STATE" = new ] && [ "$ordinal" -lt "$BOOTSTRAP_MEMBERS" ]; then
    bootstrap "clusterState is new"
  elif [ "$CLUSTER_STATE" = existing ]; then
    wait_because "no healthy cluster to join, and the state is existing: never bootstrapping (a helm upgrade, or clusterState=existing)"
  elif [ "$CLUSTER_STATE" = auto ] && all_without_data; then
    bootstrap "all $BOOTSTRAP_MEMBERS members confirm they have no data"
  fi
  # A member in the lobby waits as long as the kubelet lets it (its startup probe), so that
  # the lobbies of a bootstrap set are open together; the others retry through restarts.
  if [ -n "$lobby_pid" ]; then idle=0; else idle=$((idle + 1)); fi
  if ((idle >= attempts)); then break; fi
  if [ -n "$lobby_pid" ]; then pause 0.5; else pause 2; fi
done
log "no healthy cluster to join after $attempts attempts: exiting for the kubelet to retry"
exit 1
