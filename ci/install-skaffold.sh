#!/usr/bin/env bash
# Installs skaffold into .cache/bin where the internet is reachable (the GitHub workflow):
# the pinned release, checked against the sha256 that release publishes beside the binary.
# Machines without skaffold run tests/skaffold, which checks skaffold.yaml without it.
set -euo pipefail
source "$(dirname "$0")/env.sh"

SKAFFOLD_VERSION=${SKAFFOLD_VERSION:-v2.24.0}  # v4beta14 configs, Helm 4; the one tried here
BIN="$HASHSTACK_CACHE/bin"
mkdir -p "$BIN"

if [ -x "$BIN/skaffold" ] && [ "$("$BIN/skaffold" version)" = "$SKAFFOLD_VERSION" ]; then
  echo "install-skaffold: skaffold $SKAFFOLD_VERSION already in $BIN"
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-skaffold: no skaffold build for $(uname -m)" >&2; exit 1 ;;
esac
url="https://storage.googleapis.com/skaffold/releases/$SKAFFOLD_VERSION/skaffold-linux-$arch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/skaffold" "$url"
curl -fsSL --retry 3 -o "$tmp/skaffold.sha256" "$url.sha256"
want=$(awk '{print $1}' "$tmp/skaffold.sha256")
got=$(sha256sum "$tmp/skaffold" | awk '{print $1}')
if [ "$want" != "$got" ]; then
  echo "install-skaffold: sha256 mismatch for $url (want $want, got $got): refusing" >&2
  exit 1
fi
install -m 0755 "$tmp/skaffold" "$BIN/skaffold"
echo "install-skaffold: skaffold $("$BIN/skaffold" version) in $BIN"
