#!/usr/bin/env bash
# The release workflow's steps (.github/workflows/release.yml), one subcommand each:
#
#   ci/release.sh verify TAG                 every place says the release version, and TAG names it
#   ci/release.sh login REGISTRY             docker and helm log in ($REGISTRY_USER, $REGISTRY_PASSWORD)
#   ci/release.sh images REGISTRY [SERVICE...]
#                                            linux/amd64+arm64 images with SBOM and provenance
#                                            attestations, pushed as REGISTRY/hashstack/SERVICE:VERSION
#   ci/release.sh chart OCI_REPO IMAGE_REGISTRY
#                                            package the chart (artifacthub.io/images naming the
#                                            images in IMAGE_REGISTRY) and helm push it to OCI_REPO
#   ci/release.sh index PAGES_URL            the Helm repository site for GitHub Pages: every chart
#                                            PAGES_URL already serves, this one, and index.yaml
#   ci/release.sh sign                       cosign keyless signature of every pushed digest
#
# Everything lands in $DIST (default dist/release): the chart archive, images.txt and chart.txt
# (one REF@DIGEST per line, what `sign` signs) and site/ (what GitHub Pages serves).
# Environment: PLAIN_HTTP=1 pushes the chart over plain HTTP (a loopback registry).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HASHSTACK_ROOT"

DIST=${DIST:-$HASHSTACK_ROOT/dist/release}
PLATFORMS=linux/amd64,linux/arm64
SERVICES=(hello persistence hash)

release_version() { ci/version.sh show; }

# ghcr.io wants lower case; GitHub owners may have upper-case letters.
lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }

cmd_verify() {
  local tag=${1:?usage: ci/release.sh verify TAG}
  ci/version.sh check --tag "$tag"
}

cmd_login() {
  local registry host
  registry=$(lower "${1:?usage: ci/release.sh login REGISTRY}")
  host=${registry%%/*}
  if [ -z "${REGISTRY_USER:-}" ] || [ -z "${REGISTRY_PASSWORD:-}" ]; then
    die "login needs REGISTRY_USER and REGISTRY_PASSWORD"
  fi
  # On stdin, never on the command line; cosign reads docker's credentials.
  docker login "$host" --username "$REGISTRY_USER" --password-stdin <<<"$REGISTRY_PASSWORD"
  helm registry login "$host" --username "$REGISTRY_USER" --password-stdin <<<"$REGISTRY_PASSWORD"
}

cmd_images() {
  local registry version revision svc ref meta digest
  registry=$(lower "${1:?usage: ci/release.sh images REGISTRY [SERVICE...]}")
  shift
  [ $# -gt 0 ] || set -- "${SERVICES[@]}"
  version=$(release_version)
  revision=$(git rev-parse HEAD)
  mkdir -p "$DIST"
  for svc in "$@"; do
    case " ${SERVICES[*]} " in
      *" $svc "*) ;;
      *) die "unknown service: $svc (${SERVICES[*]})" ;;
    esac
    ref="$registry/hashstack/$svc:$version"
    meta=$(mktemp)
    # OFFLINE=0 path of the Dockerfile: the official Python base and PyPI, for both platforms.
    docker buildx build --platform "$PLATFORMS" --target "$svc" \
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
      --build-arg "SOURCE=${SOURCE_URL:-}" \
      --sbom=true --provenance=mode=max \
      --tag "$ref" --metadata-file "$meta" --push images/
    digest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$meta")
    rm -f "$meta"
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "no digest for $ref: $digest"
    echo "$ref@$digest" >>"$DIST/images.txt"
    echo "pushed $ref@$digest"
  done
}

cmd_chart() {
  local oci_repo image_registry version work chart pushed digest plain=()
  oci_repo=$(lower "${1:?usage: ci/release.sh chart OCI_REPO IMAGE_REGISTRY}")
  image_registry=$(lower "${2:?usage: ci/release.sh chart OCI_REPO IMAGE_REGISTRY}")
  [[ $oci_repo == oci://* ]] || die "OCI_REPO must start with oci:// ($oci_repo)"
  [ "${PLAIN_HTTP:-0}" != 1 ] || plain=(--plain-http)
  version=$(release_version)
  mkdir -p "$DIST"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  # A copy: only the released archive names the published images, the work tree stays as is.
  chart_copy "$work/hashstack"
  ci/version.sh publish "$work/hashstack" "$image_registry"
  helm package "$work/hashstack" --destination "$DIST" >/dev/null
  chart="$DIST/hashstack-$version.tgz"
  [ -f "$chart" ] || die "helm package made no $chart"
  pushed=$(helm push "$chart" "$oci_repo" "${plain[@]}" 2>&1) || die "helm push failed: $pushed"
  digest=$(grep -oE 'sha256:[0-9a-f]{64}' <<<"$pushed" | head -n1)
  [ -n "$digest" ] || die "helm push printed no digest: $pushed"
  echo "${oci_repo#oci://}/hashstack:$version@$digest" >>"$DIST/chart.txt"
  echo "pushed ${oci_repo#oci://}/hashstack:$version@$digest ($chart)"
}

# The site GitHub Pages serves is replaced on every deploy: fetch every chart the current index
# lists and add this release's. Only the new chart is indexed; the old entries come over from the
# published index exactly as they were (--merge).
cmd_index() {
  local pages_url site old url version
  pages_url=${1:?usage: ci/release.sh index PAGES_URL}
  pages_url=${pages_url%/}
  version=$(release_version)
  site="$DIST/site"
  old="$DIST/published-index.yaml"
  [ -f "$DIST/hashstack-$version.tgz" ] || die "run ci/release.sh chart first (no $DIST/hashstack-$version.tgz)"
  rm -rf "$site"
  mkdir -p "$site"
  if curl --fail --silent --show-error --location --output "$old" "$pages_url/index.yaml"; then
    while read -r url; do
      curl --fail --silent --show-error --location --output "$site/${url##*/}" "$url"
    done < <(python3 -c '
import sys, yaml
for entries in (yaml.safe_load(open(sys.argv[1])) or {}).get("entries", {}).values():
    for entry in entries:
        print(entry["urls"][0])
' "$old")
  else
    echo "release: no index at $pages_url yet; starting one"
    printf 'apiVersion: v1\nentries: {}\n' >"$old"
  fi
  local fresh="$DIST/fresh"
  rm -rf "$fresh"
  mkdir -p "$fresh"
  cp "$DIST/hashstack-$version.tgz" "$fresh/"
  helm repo index "$fresh" --url "$pages_url" --merge "$old"
  mv "$fresh"/* "$site/"
  rmdir "$fresh"
  echo "site: $(find "$site" -name '*.tgz' | wc -l) charts and index.yaml in $site"
}

cmd_sign() {
  local list ref count=0
  for list in "$DIST/images.txt" "$DIST/chart.txt"; do
    [ -f "$list" ] || continue
    while read -r ref; do
      [ -n "$ref" ] || continue
      # Keyless: the workflow's OIDC identity (id-token: write), recorded in Rekor.
      cosign sign --yes "$ref" </dev/null # the loop reads the list on stdin
      count=$((count + 1))
    done <"$list"
  done
  [ "$count" -gt 0 ] || die "nothing to sign: no images.txt or chart.txt in $DIST"
  echo "signed $count artifacts"
}

[ $# -gt 0 ] || usage
command=$1
shift
case $command in
  verify) cmd_verify "$@" ;;
  login) cmd_login "$@" ;;
  images) cmd_images "$@" ;;
  chart) cmd_chart "$@" ;;
  index) cmd_index "$@" ;;
  sign) cmd_sign "$@" ;;
  *) usage ;;
esac
