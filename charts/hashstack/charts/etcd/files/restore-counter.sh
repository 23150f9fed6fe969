#!/bin/sh
# shellcheck shell=bash
# Brings the counter back from a snapshot (the restore hook Job), into whatever cluster
# runs now (a fresh one after a total loss, or the damaged one):
#   1. verifies SNAPSHOT, restores it into a scratch directory and reads COUNTER_KEY from
#      a private etcd on loopback;
#   2. raises the live counter to (snapshot value + MARGIN) by compare-and-swap, unless it
#      is already higher.
# MARGIN must exceed the numbers handed out between the snapshot and the loss (backup
# interval x peak rate): then every number after the restore is above every number before.
set -u

: "${CLUSTER_ENDPOINTS:?}" "${SNAPSHOT:?}" "${COUNTER_KEY:?}" "${MARGIN:?}" "${SCRATCH:?}"
port=${RESTORE_PORT:-23790}
local_url=http://127.0.0.1:$port
peer_url=http://127.0.0.1:$((port + 1))

# "latest" names the file the backup job wrote last.
if [ "${SNAPSHOT##*/}" = latest ]; then
  read -r name <"$SNAPSHOT" || exit 1
  SNAPSHOT=${SNAPSHOT%/*}/$name
fi
log "restoring the counter from $SNAPSHOT"
etcdutl snapshot status "$SNAPSHOT" -w simple || exit 1
data=$SCRATCH/restore-$$
etcdutl snapshot restore "$SNAPSHOT" --data-dir "$data" --name restore \
  --initial-cluster "restore=$peer_url" --initial-advertise-peer-urls "$peer_url" >/dev/null || exit 1
etcd --name restore --data-dir "$data" --listen-client-urls "$local_url" \
  --advertise-client-urls "$local_url" --listen-peer-urls "$peer_url" \
  --listen-metrics-urls "http://127.0.0.1:$((port + 2))" >"$SCRATCH/restore-etcd.log" 2>&1 &
pid=$!
saved=""
for ((try = 0; try < 60; try++)); do
  pause 1
  if saved=$(etcdctl --endpoints="$local_url" get --print-value-only "$COUNTER_KEY" 2>/dev/null); then
    break
  fi
  # Exited (e.g. a port of RESTORE_PORT..+2 taken): say so now, not after a minute of retries.
  if ! kill -0 "$pid" 2>/dev/null; then
    log "the private etcd exited; its log ($SCRATCH/restore-etcd.log):"
    while read -r line; do log "  $line"; done <"$SCRATCH/restore-etcd.log"
    exit 1
  fi
done
kill "$pid"
wait "$pid"
if [[ ! $saved =~ ^[0-9]+$ ]]; then
  log "no counter under $COUNTER_KEY in $SNAPSHOT (found '${saved}')"
  exit 1
fi
target=$((saved + MARGIN))
log "the snapshot's counter is $saved; raising the live counter to at least $target"

for ((try = 0; try < 60; try++)); do
  if current=$(ctl get --print-value-only "$COUNTER_KEY"); then
    if [ -n "$current" ] && [ "$current" -ge "$target" ]; then
      log "the live counter ($current) is already at or above $target"
      exit 0
    fi
    if [ -n "$current" ]; then compare="value(\"$COUNTER_KEY\") = \"$current\""; else compare="create(\"$COUNTER_KEY\") = \"0\""; fi
    result=$(printf '%s\n\nput %s %s\n\n\n' "$compare" "$COUNTER_KEY" "$target" | ctl txn)
    if [[ $result == SUCCESS* ]]; then
      log "counter restored: ${current:-absent} -> $target"
      exit 0
    fi
  fi
  pause 1
done
log "could not set the counter"
exit 1
