#!/usr/bin/env bash
# The way back after a total loss of etcd (every member's volume gone), in one command
# (docs/etcd.md#after-a-total-loss), and the copy of the snapshots off the cluster.
#
#   ci/etcd-restore.sh [-n NAMESPACE] [options] RELEASE       restore (make etcd-restore)
#   ci/etcd-restore.sh copy-out DIR [-n NAMESPACE] RELEASE    snapshots + index into DIR
#
# Restore options:
#   --snapshot FILE           the snapshot on the backup volume (default: latest)
#   --from-file PATH          a snapshot copied off the cluster: put on the backup volume and used
#   --chart REF               the chart to upgrade with (default: this tree's charts/hashstack)
#   --etcd-replicas N         members after the restore (default: the StatefulSet's, else 3)
#   --persistence-replicas N  persistence pods after it (default: as many as before)
#   --counter-key KEY         persistence's counter (default: /hashstack/counter)
#   --timeout DURATION        for each helm upgrade and wait (default: 10m)
#
# The steps, each checked before the next, with the progress in the ConfigMap
# <release>-etcd-restore-state, so a run that failed is resumed by running it again:
#   0. refuse unless the snapshot exists and passes `etcdutl snapshot status` (read in a pod
#      of the etcd image that mounts the backup volume); pin it: its name and hash are
#      recorded, and the backup CronJob is suspended until the end, so no backup overwrites
#      it (checked again before the bootstrap); nothing to do if etcd still answers with a
#      counter;
#   1. stop the clients: persistence to 0 pods;
#   2. remove the old members and their volumes only: the StatefulSet to 0, then the claims
#      data-<release>-etcd-N (never the backup claim, which has labels of its own);
#   3. bootstrap deliberately: one member with etcd.clusterState=new; the restore Job
#      (post-upgrade hook) raises the counter to the snapshot's value + backup.restore.margin;
#      checked by reading the live counter;
#   4. grow etcd and let the clients in.
# Every kubectl and helm call goes through kube(); ETCD_RESTORE_KUBE names a program to run
# them instead (the loopback test's stand-in for a cluster: tests/chart/test_etcd_restore.py).
# The single-quoted scripts run in pods, where their variables expand.
# shellcheck disable=SC2016
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2; }
say() { printf 'etcd-restore: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

kube() {
  if [ -n "${ETCD_RESTORE_KUBE:-}" ]; then "$ETCD_RESTORE_KUBE" "$@"; else "$@"; fi
}
k() { kube "${KUBECTL:-kubectl}" "${ns_args[@]}" "$@"; }
h() { kube "${HELM:-helm}" "${ns_args[@]}" "$@"; }

mode=restore copy_dir=""
if [ "${1:-}" = copy-out ]; then mode=copy-out copy_dir=${2:-}; shift 2 || usage; fi
ns_args=()
snapshot=latest from_file="" etcd_replicas="" persistence_replicas=""
counter_key=/hashstack/counter timeout=10m
chart="$(cd "$(dirname "$0")/.." && pwd)/charts/hashstack"
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -n | --namespace) ns_args=(--namespace "$2"); shift 2 ;;
    --snapshot) snapshot=$2; shift 2 ;;
    --from-file) from_file=$2; shift 2 ;;
    --chart) chart=$2; shift 2 ;;
    --etcd-replicas) etcd_replicas=$2; shift 2 ;;
    --persistence-replicas) persistence_replicas=$2; shift 2 ;;
    --counter-key) counter_key=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) say "unknown option $1"; usage ;;
    *) args+=("$1"); shift ;;
  esac
done
[ "${#args[@]}" -ge 1 ] || usage
release=${args[0]}
fullname=${release}-etcd
fullname=${fullname:0:52}
fullname=${fullname%-}
access=$fullname-backup-access
state=$fullname-restore-state
members="app.kubernetes.io/instance=$release,app.kubernetes.io/name=etcd"
persistence=$release-persistence

# --- the backup volume, through a pod of the etcd image (bash built-ins, etcdutl) -----------

# The pod mounts the backup volume exactly as the backup CronJob does: its image, volume and
# security contexts are read from the CronJob, so nothing here repeats the chart's values.
access_pod() {
  if k get pod "$access" -o name >/dev/null 2>&1; then return 0; fi
  local path='{.spec.jobTemplate.spec.template.spec' image volume pod_sc container_sc pulls resources
  image=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.containers[0].image}") ||
    die "no CronJob $fullname-backup: the restore reads the snapshots etcd.backup writes"
  volume=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.volumes[?(@.name==\"backup\")]}")
  pod_sc=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.securityContext}")
  container_sc=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.containers[0].securityContext}")
  pulls=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.imagePullSecrets}")
  resources=$(k get cronjob "$fullname-backup" -o "jsonpath=$path.containers[0].resources}")
  [ -n "$pod_sc" ] || pod_sc='{}'
  [ -n "$container_sc" ] || container_sc='{}'
  [ -n "$pulls" ] || pulls='[]'
  [ -n "$resources" ] || resources='{}'
  k apply -f - >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "$access", "labels": {"app.kubernetes.io/name": "etcd-job",
   "app.kubernetes.io/instance": "$release", "app.kubernetes.io/component": "backup-access"}},
 "spec": {"restartPolicy": "Never", "automountServiceAccountToken": false,
   "enableServiceLinks": false, "terminationGracePeriodSeconds": 1,
   "securityContext": $pod_sc, "imagePullSecrets": $pulls,
   "containers": [{"name": "access", "image": "$image",
     "command": ["/bin/sh", "-c", "exec 9<> <(:); read -r -u 9 _"],
     "env": [{"name": "BACKUP_DIR", "value": "/backup"}, {"name": "LC_ALL", "value": "C"}],
     "resources": $resources,
     "securityContext": $container_sc,
     "volumeMounts": [{"name": "backup", "mountPath": "/backup"}, {"name": "tmp", "mountPath": "/tmp"}]}],
   "volumes": [$volume, {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]}}
EOF
  k wait --for=condition=Ready "pod/$access" --timeout="$timeout" >/dev/null ||
    die "pod $access (the backup volume) is not ready"
}

# A script run in the access pod, on the backup volume ($BACKUP_DIR there); on_backup_in
# gives it this script's standard input.
on_backup() { k exec "$access" -- /bin/sh -c "$1" sh "${@:2}"; }
on_backup_in() { k exec -i "$access" -- /bin/sh -c "$1" sh "${@:2}"; }

# The image has no cat or cp: bash copies standard input to standard output byte for byte
# (reads split at NUL bytes, printf writes them back).
COPY='copy() { while IFS= read -r -d "" c; do printf "%s\0" "$c"; done; printf "%s" "$c"; }; '
# Prints "<file> <hash>" (latest resolved) when the snapshot exists and passes
# `etcdutl snapshot status`; exits 3 when it is missing, 4 when it does not verify.
CHECK='f=$1
if [ "$f" = latest ]; then read -r f <"$BACKUP_DIR/latest" || { echo "no latest snapshot on the backup volume" >&2; exit 3; }; fi
[ -f "$BACKUP_DIR/$f" ] || { echo "no snapshot $f on the backup volume" >&2; exit 3; }
status=$(etcdutl snapshot status "$BACKUP_DIR/$f" -w simple) || { echo "$f does not verify" >&2; exit 4; }
printf "%s %s\n" "$f" "${status%%,*}"'

verify() { on_backup "$CHECK" "$1"; }

# --- progress ----------------------------------------------------------------------------

get_state() { k get configmap "$state" -o "jsonpath={.data.$1}" 2>/dev/null || :; }
set_state() { k patch configmap "$state" --type merge -p "{\"data\": {\"$1\": \"$2\"}}" >/dev/null; }

# The live counter through member 0, or nothing when etcd does not answer.
live_counter() {
  k exec "$fullname-0" -- /bin/sh -c \
    'etcdctl --endpoints="$CLUSTER_ENDPOINTS" --dial-timeout=3s --command-timeout=5s get --print-value-only "$1"' \
    sh "$1" 2>/dev/null || :
}

replicas_of() { k get "$1" "$2" -o 'jsonpath={.spec.replicas}' 2>/dev/null || :; }

# Waits until no pod matches the selector (kubectl wait fails when none is left to wait on).
pods_gone() {
  k wait --for=delete pod -l "$1" --timeout="$timeout" >/dev/null 2>&1 || :
  [ -z "$(k get pods -l "$1" -o name)" ]
}

copy_out() {
  local dir=${copy_dir:?copy-out needs a directory} file
  mkdir -p "$dir"
  access_pod
  on_backup "$COPY"'copy <"$BACKUP_DIR/index"' >"$dir/index.part" ||
    die "no index on the backup volume: no snapshot was taken yet"
  while read -r _ file _ ok _; do
    [ "$ok" = ok ] || continue
    verify "$file" >/dev/null || { say "$file: does not verify on the volume, skipped"; continue; }
    on_backup "$COPY"'copy <"$BACKUP_DIR/$1"' "$file" >"$dir/$file.part"
    local_check "$dir/$file.part" || die "$file: the copy does not verify"
    mv "$dir/$file.part" "$dir/$file"
  done < <(awk '{ last[$2] = $0 } END { for (f in last) print last[f] }' "$dir/index.part")
  mv "$dir/index.part" "$dir/index"
  k delete pod "$access" --wait=false >/dev/null
  say "copied to $dir: $(cd "$dir" && echo snapshot-*.db)"
}

# The copy is a snapshot etcdutl accepts (when etcdutl is on this machine).
local_check() {
  if command -v etcdutl >/dev/null; then etcdutl snapshot status "$1" -w simple >/dev/null; else [ -s "$1" ]; fi
}

if [ "$mode" = copy-out ]; then copy_out; exit 0; fi

# --- 0. the snapshot, and whether there is anything to do ---------------------------------

h status "$release" >/dev/null || die "no release $release${ns_args[1]:+ in ${ns_args[1]}}"
phase=$(get_state phase)
if [ -z "$phase" ]; then
  now=$(live_counter "$counter_key")
  if [[ $now =~ ^[0-9]+$ ]]; then
    say "etcd answers and the counter is $now: nothing to restore"
    say "(a wrong counter in a running cluster: the restore Job alone, docs/etcd.md)"
    exit 0
  fi
  access_pod
  if [ -n "$from_file" ]; then
    # Outside the ring (snapshot-N.db), so no backup ever writes over it.
    [ -s "$from_file" ] || die "refusing to start: no snapshot at $from_file"
    local_check "$from_file" || die "refusing to start: $from_file does not verify (etcdutl snapshot status)"
    on_backup_in "$COPY"'copy >"$BACKUP_DIR/restore.db"' <"$from_file"
    snapshot=restore.db
  fi
  read -r pinned hash < <(verify "$snapshot") || :
  [ -n "${hash:-}" ] || die "refusing to start: snapshot $snapshot is missing or does not verify"
  suspended=$(k get cronjob "$fullname-backup" -o 'jsonpath={.spec.suspend}')
  : "${etcd_replicas:=$(replicas_of statefulset "$fullname")}"
  [ "${etcd_replicas:-0}" -ge 1 ] || etcd_replicas=3
  : "${persistence_replicas:=$(replicas_of deployment "$persistence")}"
  [ "${persistence_replicas:-0}" -ge 1 ] ||
    die "persistence has no pods now: say how many it gets back (--persistence-replicas N)"
  k create configmap "$state" --from-literal=phase=pinned --from-literal=snapshot="$pinned" \
    --from-literal=hash="$hash" --from-literal=backups-suspended="${suspended:-false}" \
    --from-literal=etcd-replicas="$etcd_replicas" \
    --from-literal=persistence-replicas="$persistence_replicas" >/dev/null
  # Suspended until the end: a backup of the new cluster must not take the pinned file's place
  # (with backup.keep=1 the next one would).
  k patch cronjob "$fullname-backup" --type merge -p '{"spec": {"suspend": true}}' >/dev/null
  phase=pinned
  say "restoring from $pinned (hash $hash); backups suspended until the end"
else
  say "resuming after '$phase' (ConfigMap $state)"
  access_pod
fi
etcd_replicas=$(get_state etcd-replicas)
persistence_replicas=$(get_state persistence-replicas)
pinned=$(get_state snapshot)
upgrade=(upgrade "$release" "$chart" --reuse-values --timeout "$timeout")

# --- 1. no client takes numbers from an empty cluster -------------------------------------

if [ "$phase" = pinned ]; then
  k scale deployment "$persistence" --replicas=0 >/dev/null
  if ! pods_gone "app.kubernetes.io/instance=$release,app.kubernetes.io/name=persistence" ||
    [ "$(replicas_of deployment "$persistence")" != 0 ]; then
    die "1. persistence did not stop"
  fi
  set_state phase stopped
  phase=stopped
  say "1. clients stopped (persistence at 0 pods)"
fi

# --- 2. the old members and their volumes, and nothing else -------------------------------

if [ "$phase" = stopped ]; then
  k scale statefulset "$fullname" --replicas=0 >/dev/null
  pods_gone "$members" || die "2. etcd's pods did not go"
  while read -r claim; do
    if [[ ${claim#*/} =~ ^data-$fullname-[0-9]+$ ]]; then
      k delete "$claim" --wait=true --timeout="$timeout" >/dev/null
      say "2. deleted $claim"
    else
      say "2. $claim is not a member's volume: left alone"
    fi
  done < <(k get pvc -l "$members" -o name)
  left=$(k get pvc -l "$members" -o name | grep -cE "/data-$fullname-[0-9]+$" || :)
  [ "$left" = 0 ] || die "$left member volumes are still there"
  set_state phase cleared
  phase=cleared
fi

# --- 3. a new cluster, deliberately, and the counter after it ------------------------------

# Without --wait: hash is not ready while persistence is stopped. Helm still waits for the
# restore Job (a hook), which retries until the new member answers.
if [ "$phase" = cleared ]; then
  read -r _ hash < <(verify "$pinned") || :
  [ "${hash:-}" = "$(get_state hash)" ] ||
    die "3. $pinned is not the snapshot this restore began with (hash '${hash:-}', not '$(get_state hash)')"
  h "${upgrade[@]}" --set etcd.replicaCount=1 --set etcd.clusterState=new \
    --set etcd.backup.restore.snapshot="$pinned" --set persistence.replicaCount=0 >/dev/null ||
    die "3. the bootstrap upgrade failed (run this again to retry): kubectl logs job/$fullname-restore"
  log=$(k logs -l "job-name=$fullname-restore" --tail=-1)
  say "3. $(printf '%s\n' "$log" | grep -E 'counter restored|already at or above' | tail -n 1)"
  target=$(printf '%s\n' "$log" | sed -n 's/.*raising the live counter to at least \([0-9]*\).*/\1/p' | tail -n 1)
  key=$(k get job "$fullname-restore" -o 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="COUNTER_KEY")].value}')
  now=$(live_counter "$key")
  if ! [[ $target =~ ^[0-9]+$ && $now =~ ^[0-9]+$ ]] || [ "$now" -lt "$target" ]; then
    die "3. the live counter ('$now') is not at the restored value ('$target')"
  fi
  set_state phase restored
  phase=restored
fi

# --- 4. back to normal ---------------------------------------------------------------------

if [ "$phase" = restored ]; then
  h "${upgrade[@]}" --wait --set etcd.clusterState= --set etcd.backup.restore.snapshot= \
    --set etcd.replicaCount="$etcd_replicas" --set persistence.replicaCount="$persistence_replicas" \
    >/dev/null || die "4. the upgrade that grows etcd failed (run this again to retry)"
  # With persistence.autoscaling the chart sets no replica count: start it, the HPA takes over.
  if [ "$(replicas_of deployment "$persistence")" = 0 ]; then
    k scale deployment "$persistence" --replicas="$persistence_replicas" >/dev/null
  fi
  [ "$(replicas_of statefulset "$fullname")" = "$etcd_replicas" ] || die "4. etcd did not grow"
  say "4. etcd at $etcd_replicas members, persistence at $persistence_replicas pods"
  set_state phase 'done'
fi
k patch cronjob "$fullname-backup" --type merge \
  -p "{\"spec\": {\"suspend\": $(get_state backups-suspended)}}" >/dev/null
k delete pod "$access" --wait=false >/dev/null
k delete configmap "$state" >/dev/null
say "done: the counter is $(live_counter "$counter_key")"
