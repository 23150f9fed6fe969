#!/usr/bin/env bash
# Installs what the local stack and the tests need, idempotently: Debian packages
# (ci/apt-packages.txt), the Python venv (.venv) and the pinned Python packages.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

install_apt_packages() {
  local wanted missing=()
  if [ ${#only[@]} -gt 0 ]; then
    wanted=("${only[@]}")
  else
    mapfile -t wanted < <(grep -v -e '^#' -e '^$' ci/apt-packages.txt)
  fi
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "install-deps: no apt-get on this machine; install these Debian packages (or their" \
      "equivalents) yourself: ${missing[*]}" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  local stamp="$VENV/.installed"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # Reinstall only when a requirements file changed since the last install.
  if [ -f "$stamp" ] && [ "$stamp" -nt requirements-dev.txt ] \
     && [ "$stamp" -nt images/requirements.txt ] && [ "$stamp" -nt images/pyproject.toml ]; then
    return 0
  fi
  echo "install-deps: pip install into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e images/
  touch "$stamp"
}

# --only PKG...: just these Debian packages (make up needs etcd, not podman).
only=()
if [ "${1:-}" = "--only" ]; then
  shift
  only=("$@")
fi

install_apt_packages
install_python_packages
