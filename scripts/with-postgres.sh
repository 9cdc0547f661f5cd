#!/usr/bin/env bash
# with-postgres.sh CMD... : runs CMD with a private, throw-away PostgreSQL server.
# Installs Debian's postgresql once, initdb's a temp cluster on a private port and socket,
# exports TEST_DATABASE_URL, and always stops and removes the server afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -z "$PGBIN" || ! -x "$PGBIN/initdb" ]]; then
  "$ROOT/scripts/ensure-apt.sh" /nonexistent-initdb postgresql
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
PGDIR="$(mktemp -d /tmp/xianyu-pg.XXXXXX)"
chmod 755 "$PGDIR"
PORT="${PGTEST_PORT:-$(( 20000 + RANDOM % 20000 ))}"
RUNAS=()
if [[ "$(id -u)" == 0 ]]; then
  chown postgres "$PGDIR"
  RUNAS=(runuser -u postgres --)
fi
cleanup() {
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
echo ">> PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT for this run" >&2
export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
set +e
"$@"
rc=$?
exit $rc
