#!/usr/bin/env bash
# Makes the local Python base image used by the offline build path:
#   ci/images/base.sh IMAGE
# Debian bookworm (essential variant) plus python3, python3-venv and libstdc++6 (grpcio needs it),
# fetched by mmdebstrap from this machine's own apt sources, read at run time, and piped into
# `podman import`. The root filesystem tarball is kept in $HASHSTACK_CACHE/images so a fresh
# podman store only needs the import (seconds), not a new bootstrap.
set -euo pipefail
source "$(dirname "$0")/../env.sh"

image=${1:?usage: base.sh IMAGE}
suite=bookworm
packages=python3,python3-venv,libstdc++6
# The merged-usr hook makes /bin etc. symlinks up front, so usrmerge (and perl with it) is not
# pulled in by init-system-helpers. Documentation, manuals and translations are of no use here.
options=(
  --variant=essential --include="$packages"
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --aptopt='Acquire::Languages "none"'
  --format=tar
)
cache_dir="$HASHSTACK_CACHE/images"
# A change of suite, packages or options makes a new tarball and a new image.
key=$(printf '%s\n' "$suite" "${options[@]}" | sha256sum | cut -c1-12)
tarball="$cache_dir/base-$suite-$key.tar"

# Builds run side by side (make images, the tests, skaffold): one makes the base, the others wait.
mkdir -p "$cache_dir"
exec {lock}>"$cache_dir/base.lock"
flock "$lock"

# The label ties the image to the package list: a changed list makes a new base.
if podman image exists "$image" \
  && [ "$(podman image inspect --format '{{index .Labels "hashstack.base.key"}}' "$image")" = "$key" ]; then
  echo "base image $image is up to date"
  exit 0
fi

# One-line apt entries for the Debian suites this machine already uses (main suite, updates,
# security): whatever mirror or snapshot the host is configured with, nothing named here.
apt_sources() {
  # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders, not shell expansions
  apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
    | awk -v s="$suite" '$1 == "deb" && ($3 == s || $3 == s "-updates" || $3 == s "-security") {
        key = $2 " " $3
        if (!(key in comps)) { order[++n] = key; comps[key] = $4 }
        else if (index(" " comps[key] " ", " " $4 " ") == 0) { comps[key] = comps[key] " " $4 }
      }
      END { for (i = 1; i <= n; i++) print "deb " order[i] " " comps[order[i]] }'
}

if [ ! -s "$tarball" ]; then
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing (ci/install-deps.sh)" >&2; exit 1; }
  sources=$(apt_sources)
  if [ -z "$sources" ]; then
    echo "no $suite apt source is configured on this machine" >&2
    exit 1
  fi
  echo "bootstrapping $suite with $packages from:"
  echo "$sources"
  mmdebstrap "${options[@]}" --quiet "$suite" "$tarball.$$.tmp" - <<<"$sources" \
    2>"$cache_dir/mmdebstrap.log" \
    || { tail -n 40 "$cache_dir/mmdebstrap.log" >&2; rm -f "$tarball.$$.tmp"; exit 1; }
  mv "$tarball.$$.tmp" "$tarball"
  # Tarballs of earlier option sets are of no further use.
  find "$cache_dir" -maxdepth 1 -name "base-$suite-*.tar" ! -name "${tarball##*/}" -delete
fi

podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL hashstack.base.key=$key" \
  --message "debian $suite with $packages (mmdebstrap)" \
  "$tarball" "$image" >/dev/null
# A truncated tarball imports without complaint: prove the image has a working Python.
if ! podman run --rm --network=none "$image" python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "the base image made from $tarball has no working python3: both removed, run again" >&2
  podman rmi "$image" >/dev/null || true
  rm -f "$tarball"
  exit 1
fi
echo "imported $image from $tarball"
