#!/usr/bin/env bash
# skaffold for real with the custom builder (profile podman: ci/images.sh) on kind, as a user
# without Docker for the images would run it (the workflow's skaffold-kind job):
#   1. a kind cluster and its registry on localhost:$KIND_REGISTRY_PORT (ci/kind/cluster.sh);
#   2. skaffold build: ci/images.sh builds each image ($IMAGES_ENGINE, default podman) and
#      pushes it to that registry; skaffold reads the digests back;
#   3. skaffold run: the same images (found in the registry, not built again) deployed with the
#      chart, every pod Ready (the release's wait and skaffold's status check);
#   4. skaffold dev: it must start without replacing a pod (run and dev share one run id, and
#      no image changed: the same pods before and after); once it watches, one edit of
#      images/hashstack/hello.py is synced (no rebuild) and the new answer is read through
#      skaffold's port forward; the edit is undone and skaffold dev is stopped with Ctrl-C
#      (which removes the release).
# The images go through the registry because `kind load docker-image` needs the docker CLI
# and the images are in podman's store: a throwaway skaffold global config says the kind
# context is not local (so skaffold pushes), and `-p podman,-kind` drops the kind profile's
# push: false.
# Environment: SKAFFOLD, KIND_* (ci/kind/cluster.sh; its ENGINE is KIND_ENGINE, default: docker
#   when it answers), IMAGES_ENGINE, OFFLINE (ci/images.sh; the workflow: 0), DEV_WAIT (s,
#   default 300), DRY_RUN=1 (print the commands).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

SKAFFOLD=${SKAFFOLD:-skaffold}
CLUSTER=${KIND_CLUSTER_NAME:-hashstack}
REGISTRY="localhost:${KIND_REGISTRY_PORT:-5001}"
OUT="$HASHSTACK_CACHE/skaffold-kind"
GLOBAL_CONFIG="$OUT/global-config.yaml"
DEV_WAIT=${DEV_WAIT:-300}
export ENGINE=${IMAGES_ENGINE:-podman} # read by ci/images.sh under skaffold
export KUBECONFIG="${KIND_KUBECONFIG:-$HASHSTACK_CACHE/kind/kubeconfig}"
mkdir -p "$OUT"

# hello's local port and the release's namespace, from skaffold.yaml; the text hello answers.
read -r HELLO_PORT NAMESPACE < <(python3 -c 'import yaml
config = yaml.safe_load(open("skaffold.yaml"))
port = next(f["localPort"] for f in config["portForward"] if f["resourceName"].endswith("-hello"))
print(port, config["deploy"]["helm"]["releases"][0]["namespace"])')
SOURCE=images/hashstack/hello.py
grep -q '"Hello, World!"' "$SOURCE" || die "$SOURCE no longer answers \"Hello, World!\""

PROFILES="podman,-kind"
COMMON=(--config "$GLOBAL_CONFIG" --profile "$PROFILES" --default-repo "$REGISTRY")
# One run id (skaffold build takes no labels): `skaffold dev` leaves what `run` deployed as is.
RUN_ID=(--label skaffold.dev/run-id=hashstack-ci)

ENGINE="${KIND_ENGINE:-}" run ci/kind/cluster.sh up
run "$SKAFFOLD" config set --config "$GLOBAL_CONFIG" --kube-context "kind-$CLUSTER" \
  local-cluster false
run "$SKAFFOLD" build "${COMMON[@]}" --file-output "$OUT/build.json"
run "$SKAFFOLD" run "${COMMON[@]}" "${RUN_ID[@]}"
[ "${DRY_RUN:-0}" != 1 ] || {
  printf '%q ' "$SKAFFOLD" dev "${COMMON[@]}" "${RUN_ID[@]}" --port-forward=user --tail=false
  echo
  exit 0
}

pods() { kubectl --namespace "$NAMESPACE" get pods -o jsonpath='{.items[*].metadata.uid}' | tr ' ' '\n' | sort; }
pods >"$OUT/pods-after-run"

# The dev loop: started in the background, its log in $OUT/dev.log.
original=$(mktemp)
cp "$SOURCE" "$original"
dev_start=$SECONDS
"$SKAFFOLD" dev "${COMMON[@]}" "${RUN_ID[@]}" --port-forward=user --tail=false >"$OUT/dev.log" 2>&1 &
dev_pid=$!
finish() {
  cp "$original" "$SOURCE"
  rm -f "$original"
  if kill -INT "$dev_pid" 2>/dev/null; then wait "$dev_pid" || true; fi
}
trap finish EXIT

answer() { curl -fsS --max-time 2 "http://127.0.0.1:$HELLO_PORT/" 2>/dev/null || true; }
wait_for() { # wait_for TEXT SECONDS: until hello answers TEXT
  local deadline=$((SECONDS + $2))
  until [ "$(answer)" = "$1" ]; do
    kill -0 "$dev_pid" 2>/dev/null || { tail -50 "$OUT/dev.log" >&2; die "skaffold dev exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -50 "$OUT/dev.log" >&2; die "hello never answered '$1'"; }
    sleep 0.2
  done
}
deadline=$((SECONDS + DEV_WAIT))
until grep -q "Watching for changes" "$OUT/dev.log"; do
  kill -0 "$dev_pid" 2>/dev/null || { tail -50 "$OUT/dev.log" >&2; die "skaffold dev exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -50 "$OUT/dev.log" >&2; die "skaffold dev never watched"; }
  sleep 1
done
log "skaffold dev watching $((SECONDS - dev_start)) s after it started"
pods >"$OUT/pods-after-dev"
if ! diff "$OUT/pods-after-run" "$OUT/pods-after-dev" >/dev/null; then
  kubectl --namespace "$NAMESPACE" get pods -o wide >&2 || true
  die "skaffold dev replaced pods although no image changed (pod uids: $OUT/pods-after-*)"
fi
wait_for "Hello, World!" 60
sed -i 's/"Hello, World!"/"Hello, skaffold sync!"/' "$SOURCE"
start=$(date +%s%N)
wait_for "Hello, skaffold sync!" 60
log "synced edit served after $((($(date +%s%N) - start) / 1000000)) ms (0.2 s polls)"
grep -q "Syncing 1 files" "$OUT/dev.log" || die "the edit was not synced (dev.log: $OUT/dev.log)"
if sed -n '/Watching for changes/,$p' "$OUT/dev.log" | grep -q "Building \["; then
  die "the edit rebuilt an image instead of syncing it"
fi
log "ok: build, run and a synced edit with the custom builder on kind-$CLUSTER"
