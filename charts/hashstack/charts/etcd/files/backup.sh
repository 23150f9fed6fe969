#!/bin/sh
# shellcheck shell=bash
# Takes one snapshot of the cluster into BACKUP_DIR and verifies it (the backup CronJob).
# The image has no rm or mv, so the last KEEP snapshots are a ring of files overwritten in
# turn: snapshot-0.db .. snapshot-<KEEP-1>.db. `index` gets one line per snapshot
# ("<sequence> <file> <unix time> ok|bad <etcdutl status>") and `latest` names the newest
# good one. etcdctl writes each snapshot to <file>.part and renames it when complete.
set -u

: "${CLUSTER_ENDPOINTS:?}" "${BACKUP_DIR:?}" "${KEEP:?}"

seq=0
if [ -f "$BACKUP_DIR/sequence" ]; then read -r seq <"$BACKUP_DIR/sequence"; fi
file=snapshot-$((seq % KEEP)).db
printf -v now '%(%s)T' -1

# snapshot save talks to one member; the client Service picks a ready one.
if ! etcdctl --endpoints="$CLUSTER_ENDPOINTS" --dial-timeout=5s --command-timeout=300s \
  snapshot save "$BACKUP_DIR/$file" >/dev/null; then
  log "snapshot save failed"
  exit 1
fi
printf '%s\n' "$((seq + 1))" >"$BACKUP_DIR/sequence"
if ! status=$(etcdutl snapshot status "$BACKUP_DIR/$file" -w simple); then
  printf '%s %s %s bad\n' "$seq" "$file" "$now" >>"$BACKUP_DIR/index"
  log "$file does not verify"
  exit 1
fi
printf '%s %s %s ok %s\n' "$seq" "$file" "$now" "$status" >>"$BACKUP_DIR/index"
printf '%s\n' "$file" >"$BACKUP_DIR/latest"
log "$file verified (hash, revision, keys, size: $status)"
