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
RUNAS=()
if [[ "$(id -u)" == 0 ]]; then
  # initdb refuses to run as root: the cluster belongs to the postgres user.
  chown postgres "$PGDIR"
  RUNAS=(runuser -u postgres --)
fi
child=0
cleanup() {
  if (( child )) && kill -0 "$child" 2>/dev/null; then kill -TERM "$child" 2>/dev/null || true; fi
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
# A signal before the command runs ends the script (EXIT cleans up); afterwards it is passed
# on to the command, and the script exits with the command's status once it has finished.
on_signal() {
  if (( child )); then kill -"$1" "$child" 2>/dev/null || true; else exit $((128 + $2)); fi
}
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP
"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 >/dev/null
# A random port may be taken: try a few before giving up (a pinned PGTEST_PORT is tried once).
for attempt in 1 2 3 4 5; do
  PORT="${PGTEST_PORT:-$(( 20000 + RANDOM % 20000 ))}"
  if "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 60 \
    -o "-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null; then
    break
  fi
  if [[ -n "${PGTEST_PORT:-}" || $attempt == 5 ]]; then
    echo ">> PostgreSQL did not start; its log:" >&2
    cat "$PGDIR/log" >&2 || true
    exit 1
  fi
done
echo ">> PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT for this run" >&2
export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
set +e
# In the background so that signals reach the traps above; `<&0` keeps the caller's stdin
# (a background command would otherwise read /dev/null).
"$@" <&0 &
child=$!
while :; do
  wait "$child"
  rc=$?
  # wait returns early (status > 128) when a trapped signal arrives; the command may still run.
  kill -0 "$child" 2>/dev/null || break
done
child=0
exit $rc
