#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests (issue 11).
#
#   dir=$(scripts/pg-throwaway.sh start)   # initdb + pg_ctl start; prints the cluster directory
#   scripts/pg-throwaway.sh url "$dir"      # prints postgres://postgres@127.0.0.1:<port>/postgres
#   scripts/pg-throwaway.sh stop "$dir"     # stops the server and removes the directory
#
# The cluster lives in a fresh temporary directory, listens on 127.0.0.1
# only (no Unix socket outside its directory), on a free port, with trust
# authentication for 127.0.0.1 (nobody else can reach it). fsync is off
# (PG_DURABLE=1 at start keeps PostgreSQL's durable defaults, for
# benchmarks): it is thrown away after the tests, and a test that restarts the cluster
# uses `pg_ctl stop -m fast` (a clean shutdown), never a machine crash.
# PostgreSQL refuses to run as root: as root the server runs as the
# `postgres` user (created by the Debian package). Installs postgresql-15
# with apt if it is missing. Idempotent: `stop` on a stopped or missing
# cluster succeeds.
set -euo pipefail

pgbin=/usr/lib/postgresql/15/bin

ensure_installed() {
  if [ -x "$pgbin/initdb" ] && [ -x "$pgbin/pg_ctl" ]; then return; fi
  echo "pg-throwaway: apt-get install postgresql-15" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 >&2
}

# Runs a command as the cluster's owner (the `postgres` user when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
  ensure_installed
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/ironseal-pg.XXXXXX")
  chmod 0755 "$dir"
  mkdir "$dir/data"
  [ "$(id -u)" = 0 ] && { as_owner true; chown -R postgres: "$dir"; }
  as_owner "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
EOF
  if [ "${PG_DURABLE:-0}" = 1 ]; then
    # Durable as a production cluster (the defaults): every commit is
    # flushed to disk before it is acknowledged. For benchmarks that
    # compare against sled's durable group commit.
    echo "# PG_DURABLE=1: fsync, synchronous_commit and full_page_writes stay on" >>"$dir/data/postgresql.conf"
  else
    cat >>"$dir/data/postgresql.conf" <<EOF
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  # Only loopback TCP and the private socket, trusted.
  cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  local port tries=0
  while :; do
    port=$(free_port)
    echo "$port" >"$dir/port"
    if as_owner "$pgbin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/server.log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 5 ]; then
      cat "$dir/server.log" >&2 || true
      echo "pg-throwaway: could not start PostgreSQL" >&2
      exit 1
    fi
  done
  echo "$dir"
}

need_dir() {
  if [ -z "${1:-}" ]; then echo "usage: $0 $2 <cluster directory from start>" >&2; exit 2; fi
}

cmd_url() {
  need_dir "${1:-}" url
  echo "postgres://postgres@127.0.0.1:$(cat "$1/port")/postgres"
}

cmd_stop() {
  need_dir "${1:-}" stop
  local dir=$1
  case "$dir" in */ironseal-pg.*) ;; *) echo "pg-throwaway: $dir is not a throwaway cluster" >&2; exit 2 ;; esac
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) cmd_start ;;
  url) cmd_url "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 start | url <dir> | stop <dir>" >&2; exit 2 ;;
esac
