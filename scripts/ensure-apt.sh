#!/usr/bin/env bash
# ensure-apt.sh CMD PACKAGE... : installs Debian packages once, only when CMD is missing.
set -euo pipefail
cmd="$1"; shift
if command -v "$cmd" >/dev/null 2>&1 || [[ -x "$cmd" ]]; then exit 0; fi
echo ">> installing $* (apt-get)" >&2
SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
