#!/bin/sh
# Starts one etcd member of the StatefulSet. The etcd image has a static shell,
# etcd and etcdctl and nothing else, so this script uses shell built-ins only.
#
# etcd takes its whole configuration from ETCD_* variables set by the pod spec.
# With member data on the volume, etcd ignores every ETCD_INITIAL_* setting and
# rejoins with that data: the usual restart. Without member data this script
# asks the other members (MEMBER_CLIENT_URLS) what the cluster looks like:
#   nobody answers, or no member has started yet -> bootstrap a new cluster
#   this member is listed as started             -> its data was lost (fresh PVC):
#                                                   remove it, add it again, join
#   this member is listed but never started      -> join the running cluster
#   this member is not listed (scale up)         -> add it, join
# Joining uses ETCD_INITIAL_CLUSTER_STATE=existing with the current membership.
# When etcdctl fails the script exits non-zero and the kubelet retries it.
set -eu

: "${ETCD_NAME:?}" "${ETCD_DATA_DIR:?}" "${ETCD_INITIAL_CLUSTER:?}"
: "${ETCD_INITIAL_ADVERTISE_PEER_URLS:?}" "${ETCD_ADVERTISE_CLIENT_URLS:?}"
: "${MEMBER_CLIENT_URLS:?}"

log() { printf 'entrypoint: %s\n' "$*" >&2; }

if [ -d "$ETCD_DATA_DIR/member/wal" ]; then
  log "member data found in $ETCD_DATA_DIR: restarting $ETCD_NAME with it"
  exec etcd
fi

my_peer=$ETCD_INITIAL_ADVERTISE_PEER_URLS
bootstrap_cluster=$ETCD_INITIAL_CLUSTER
default_ifs=$IFS

bootstrap() {
  log "$1: bootstrapping $ETCD_NAME into the new cluster $bootstrap_cluster"
  exec etcd
}

others=""
IFS=,
for url in $MEMBER_CLIENT_URLS; do
  if [ "$url" != "$ETCD_ADVERTISE_CLIENT_URLS" ]; then
    others="${others:+$others,}$url"
  fi
done
IFS=$default_ifs

if [ -z "$others" ]; then
  bootstrap "single member"
fi

ctl() {
  etcdctl --endpoints="$others" --dial-timeout=3s --command-timeout=10s "$@"
}

if ! members=$(ctl member list 2>/dev/null); then
  bootstrap "no other member answers"
fi

# etcdctl's simple output: "ID, status, name, peer URLs, client URLs, learner".
my_id=""
my_status=""
started=0
while IFS=', ' read -r id status name peer rest; do
  if [ -z "$id" ]; then continue; fi
  if [ "$status" = started ]; then started=$((started + 1)); fi
  if [ "$peer" = "$my_peer" ]; then
    my_id=$id
    my_status=$status
  fi
done <<LIST
$members
LIST

if [ "$started" -eq 0 ]; then
  bootstrap "no member has started yet"
fi

if [ "$my_status" = started ]; then
  log "$ETCD_NAME ($my_id) ran before but has no data now: replacing the member"
  ctl member remove "$my_id" >/dev/null
  my_status=""
fi
if [ -z "$my_status" ]; then
  log "adding $ETCD_NAME ($my_peer) to the running cluster"
  ctl member add "$ETCD_NAME" --peer-urls="$my_peer" >/dev/null
  members=$(ctl member list)
fi

# Members that never started have no name in the list: take it from the
# bootstrap list, where every name=URL pair of the StatefulSet is known.
name_of() {
  found=""
  if [ "$1" = "$my_peer" ]; then found=$ETCD_NAME; return; fi
  IFS=,
  for pair in $bootstrap_cluster; do
    if [ "${pair#*=}" = "$1" ]; then found=${pair%%=*}; fi
  done
  IFS=$default_ifs
  if [ -z "$found" ]; then
    host=${1#*://}
    found=${host%%.*}
  fi
}

cluster=""
while IFS=', ' read -r id status name peer rest; do
  if [ -z "$id" ]; then continue; fi
  if [ -z "$name" ]; then
    name_of "$peer"
    name=$found
  fi
  cluster="${cluster:+$cluster,}$name=$peer"
done <<LIST
$members
LIST

ETCD_INITIAL_CLUSTER=$cluster
ETCD_INITIAL_CLUSTER_STATE=existing
export ETCD_INITIAL_CLUSTER ETCD_INITIAL_CLUSTER_STATE
log "joining the running cluster as $ETCD_NAME: $cluster"
exec etcd
