#!/usr/bin/env bash
# Scale-out benchmark (issue 11), side by side in one run:
#   sled     one ironseal process on its embedded store
#   pg1      one ironseal process on PostgreSQL
#   pg3      three ironseal replicas on one PostgreSQL behind HAProxy
#            (round robin per request; the set-up of
#            conformance/tests/scale_out.rs and docs/scale-out.md)
# Each runs N complete ACME orders with C clients (bench_acme, the driver of
# scripts/bench-acme.sh) and reports orders/s, server CPU per order (summed
# over the replicas, from /proc) and database CPU per order (postmaster and
# backends, from /proc).
#
#   scripts/bench-scale-out.sh [N] [C]     N orders (default 600), C clients (default 16)
#
# Environment:
#   CARGO_TARGET_DIR   where to build / find binaries (default: <repo>/target)
#   MAX_SECONDS        --max-seconds for each bench_acme run (default 300)
#   STALL_SECONDS      --stall-seconds (default 20)
#   SKIP_BUILD=1       do not run cargo build
#   KEEP=1             keep the work dir (configs, logs, outputs)
#   IRONSEAL=path      ironseal binary (default $CARGO_TARGET_DIR/release/ironseal)
#
#   LB_MODE            http (default: HAProxy terminates TLS and re-encrypts,
#                      balancing every request) or tcp (TLS passes through,
#                      balancing connections)
#   PG_FSYNC           on (default: PostgreSQL's durable defaults, each commit
#                      flushed, as sled flushes before answering) or off
#
# PostgreSQL is a throwaway cluster (scripts/pg-throwaway.sh, on loopback);
# pg1 and pg3 each get a fresh database on it. Figures are
# defined in docs/benchmarks.md ("ACME orders"; "Scale-out").
set -euo pipefail

N=${1:-600}
C=${2:-16}
MAX_SECONDS=${MAX_SECONDS:-300}
STALL_SECONDS=${STALL_SECONDS:-20}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-scale-out
BENCH=$TARGET/release/bench_acme
REPLICAS=3
LB_MODE=${LB_MODE:-http}
[[ $LB_MODE == http || $LB_MODE == tcp ]] || { echo "bench-scale-out: LB_MODE must be http or tcp" >&2; exit 2; }

bench_need_tools --hint pebble-challtestsrv haproxy openssl curl jq python3 psql

bench_work_dir
chmod 0755 "$WORK"
PGDIR=""
stop_pg() { [[ -z $PGDIR ]] || "$ROOT/scripts/pg-throwaway.sh" stop "$PGDIR" >/dev/null 2>&1; }
bench_at_exit stop_pg
BENCH_KEEP_NOTE="(logs, configs)"
bench_cleanup_on_exit

bench_build -p ironseal -p ironseal-conformance
[[ -x $BENCH && -x $IRONSEAL ]] || { echo "bench-scale-out: $BENCH or $IRONSEAL not built" >&2; exit 2; }

# The first port (the replicas' HTTPS port) is also free on 127.0.0.2..4.
read -r PORT DNS_PORT CTS_MGMT H01 TLSALPN LB_HTTP HTTP0 HTTP1 HTTP2 HTTP3 SPORT <<<"$(bench_free_ports 11 "$REPLICAS")"
HTTPS=("$HTTP1" "$HTTP2" "$HTTP3")
ADMIN_KEY="isk_bench_$(openssl rand -hex 16)"

echo "bench-scale-out: N=$N C=$C, work dir $WORK, $(nproc) cores, load average $(bench_load_avg)"

bench_start_challtestsrv "$DNS_PORT" "$CTS_MGMT"

# serve LABEL DATA IP:PORT HTTP_PORT PUBLIC_HTTP [extra args...]: starts ironseal; its PID in PID.
serve() {
  local label=$1 data=$2 addr=$3 http=$4 public=$5
  local ip=${addr%:*}
  shift 5
  mkdir -p "$data"
  bench_start_ironseal "$WORK/$label.log" "$ADMIN_KEY" --data-dir "$data" \
    --listen "$addr" --http-listen "127.0.0.1:$http" --http-public-url "$public" \
    --hostname localhost --hostname 127.0.0.1 --hostname "$ip" \
    --test-dns-resolver "127.0.0.1:$DNS_PORT" --test-http01-port "$H01" --test-tlsalpn01-port "$TLSALPN" "$@"
  PID=$BENCH_PID
}

# ---------------------------------------------------------------------------
# 1) sled, one process.
# One process: on 127.0.0.1 with its own port, as scripts/bench-acme.sh does.
serve sled "$WORK/sled-data" "127.0.0.1:$SPORT" "$HTTP0" "http://127.0.0.1:$HTTP0"
if bench_wait_https "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" 60 "$PID"; then
  echo "bench-scale-out: sled: ironseal pid $PID"
  bench_acme_run sled "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" "$H01" "$PID"
else
  echo "bench-scale-out: sled server not ready:" >&2; tail -n 20 "$WORK/sled.log" >&2
fi
bench_stop "$PID"

# ---------------------------------------------------------------------------
# PostgreSQL, throwaway.
PG_FSYNC=${PG_FSYNC:-on}
[[ $PG_FSYNC == on || $PG_FSYNC == off ]] || { echo "bench-scale-out: PG_FSYNC must be on or off" >&2; exit 2; }
PGDIR=$(PG_DURABLE=$([[ $PG_FSYNC == on ]] && echo 1 || echo 0) "$ROOT/scripts/pg-throwaway.sh" start)
PGURL=$("$ROOT/scripts/pg-throwaway.sh" url "$PGDIR")
PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
# Database work per completed order in database $1 (pg_stat_database of the
# whole run: transactions, rows read, rows written), printed after the run.
db_work() { # db label
  local n
  n=$(bench_acme_field "$2" .completed)
  psql "$PGURL" -X -tA -F' ' -c "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched,
      tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = '$1'" |
    awk -v n="$n" -v l="$2" '{ if (n > 0) printf "bench-scale-out: %s: database per order: %.1f transactions, %.1f rows read, %.1f rows written\n", l, $1 / n, $2 / n, $3 / n }'
}
db_config() { # name -> config file path
  psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >/dev/null
  local url=${PGURL%/postgres}/$1
  printf '[storage]\nbackend = "postgres"\nurl = "%s"\npool_size = 16\n' "$url" >"$WORK/$1.toml"
  echo "$WORK/$1.toml"
}
echo "bench-scale-out: PostgreSQL $(psql "$PGURL" -X -tA -c 'SHOW server_version') postmaster pid $PGPID ($PGDIR)"

# 2) PostgreSQL, one replica.
CONF=$(db_config pg1)
serve pg1 "$WORK/pg1-data" "127.0.0.1:$SPORT" "$HTTP0" "http://127.0.0.1:$HTTP0" --config "$CONF" --kek-file "$WORK/pg1.kek"
if bench_wait_https "https://localhost:$SPORT/directory" "$WORK/pg1-data/root.pem" 60 "$PID"; then
  echo "bench-scale-out: pg1: ironseal pid $PID"
  bench_acme_run pg1 "https://localhost:$SPORT/directory" "$WORK/pg1-data/root.pem" "$H01" "$PID" "$PGPID"
else
  echo "bench-scale-out: pg1 server not ready:" >&2; tail -n 20 "$WORK/pg1.log" >&2
fi
bench_stop "$PID"
db_work pg1 pg1

# 3) PostgreSQL, three replicas behind HAProxy.
CONF=$(db_config pg3)
RPIDS=()
ok=1
for ((r = 0; r < REPLICAS; r++)); do
  ip=127.0.0.$((r + 2))
  serve "pg3-r$r" "$WORK/pg3-r$r" "$ip:$PORT" "${HTTPS[$r]}" "http://127.0.0.1:$LB_HTTP" --config "$CONF" --kek-file "$WORK/pg3.kek"
  RPIDS+=("$PID")
  # The first replica bootstraps the CA; the others start after it.
  bench_wait_https "https://$ip:$PORT/directory" "$WORK/pg3-r$r/root.pem" 60 "$PID" || { ok=0; tail -n 20 "$WORK/pg3-r$r.log" >&2; }
done
ROOTPEM=$WORK/pg3-r0/root.pem
if [[ $ok == 1 ]]; then
  # HAProxy's certificate for localhost, from the replicas' CA (admin API).
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/lb.key" \
    -out "$WORK/lb.csr" -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  jq -n --rawfile csr "$WORK/lb.csr" '{csrPem: $csr}' >"$WORK/lb.req.json"
  curl -sf --cacert "$ROOTPEM" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/lb.req.json" "https://127.0.0.2:$PORT/admin/v1/certificates" >"$WORK/lb.issued.json"
  { jq -r .certificatePem "$WORK/lb.issued.json"; jq -r .chainPem "$WORK/lb.issued.json"; cat "$WORK/lb.key"; } >"$WORK/lb.pem"
  if [[ $LB_MODE == tcp ]]; then
    # Layer 4: TLS passes through to the replicas (each client's kept-alive
    # connection stays on one replica; connections are spread round robin).
  {
    cat <<EOF
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 2
    option redispatch 1
frontend acme
    bind 127.0.0.1:$PORT
    default_backend ironseal_https
backend ironseal_https
    balance roundrobin
    default-server check inter 1s fall 2 rise 2
EOF
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.$((r + 2)):$PORT"; done
    cat <<EOF
frontend pki
    mode http
    bind 127.0.0.1:$LB_HTTP
    default_backend ironseal_http
backend ironseal_http
    mode http
    balance roundrobin
EOF
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.1:${HTTPS[$r]}"; done
  } >"$WORK/haproxy.cfg"
  else
  {
    cat <<EOF
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    retries 2
    option redispatch 1
frontend acme
    bind 127.0.0.1:$PORT ssl crt $WORK/lb.pem alpn http/1.1
    default_backend ironseal_https
backend ironseal_https
    balance roundrobin
    option httpchk
    http-check send meth GET uri /directory ver HTTP/1.1 hdr Host localhost:$PORT
    http-check expect status 200
    default-server ssl verify required ca-file $ROOTPEM sni str(localhost) verifyhost localhost check inter 1s fall 2 rise 2
EOF
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.$((r + 2)):$PORT"; done
    cat <<EOF
frontend pki
    bind 127.0.0.1:$LB_HTTP
    default_backend ironseal_http
backend ironseal_http
    balance roundrobin
EOF
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.1:${HTTPS[$r]}"; done
  } >"$WORK/haproxy.cfg"
  fi
  haproxy -c -q -f "$WORK/haproxy.cfg"
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  LB_PID=$!
  bench_cleanup_add "$LB_PID"
  if bench_wait_https "https://localhost:$PORT/directory" "$ROOTPEM" 30 "$LB_PID" "${RPIDS[@]}"; then
    LIST=$(IFS=,; echo "${RPIDS[*]}")
    echo "bench-scale-out: pg3: replicas $LIST behind haproxy $(haproxy -v | head -n 1 | cut -d' ' -f3) pid $LB_PID, $LB_MODE mode (its CPU is printed apart)"
    lb_ticks() { awk '{print $14 + $15}' "/proc/$LB_PID/stat"; }
    LB_T0=$(lb_ticks)
    bench_acme_run pg3 "https://localhost:$PORT/directory" "$ROOTPEM" "$H01" "$LIST" "$PGPID"
    LB_T1=$(lb_ticks)
    LB_CPU_MS=$(awk -v t="$((LB_T1 - LB_T0))" -v hz="$(getconf CLK_TCK)" -v n="$(bench_acme_field pg3 .completed)" \
      'BEGIN { if (n > 0) printf "%.2f", t * 1000 / hz / n; else printf "-" }')
    echo "bench-scale-out: pg3: HAProxy CPU $LB_CPU_MS ms/order ($LB_MODE mode)"
  else
    echo "bench-scale-out: HAProxy not ready:" >&2; tail -n 20 "$WORK/haproxy.log" >&2
  fi
else
  echo "bench-scale-out: a pg3 replica did not start" >&2
fi
for pid in "${RPIDS[@]}"; do bench_stop "$pid"; done
db_work pg3 pg3

# ---------------------------------------------------------------------------
ratio() { # a b key
  local a b
  a=$(bench_acme_field "$1" ".$3"); b=$(bench_acme_field "$2" ".$3")
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($b > 0)}"; then
    awk "BEGIN{printf \"%.2f\", $a / $b}"
  else
    printf -- "-"
  fi
}
echo "== Scale-out: N=$N C=$C on $(nproc) cores, PostgreSQL fsync $PG_FSYNC, balancer $LB_MODE mode, load average before $(bench_load_avg) =="
printf "%-26s %12s %12s %12s %10s %10s\n" "" "sled" "pg 1" "pg 3+lb" "pg1/sled" "pg3/pg1"
row() { printf "%-26s %12s %12s %12s %10s %10s\n" "$1" "$(bench_acme_num sled "$2" "$3")" "$(bench_acme_num pg1 "$2" "$3")" "$(bench_acme_num pg3 "$2" "$3")" "$(ratio pg1 sled "$2")" "$(ratio pg3 pg1 "$2")"; }
printf "%-26s %12s %12s %12s\n" "completed/failed" "$(bench_acme_field sled .completed)/$(bench_acme_field sled .failed)" "$(bench_acme_field pg1 .completed)/$(bench_acme_field pg1 .failed)" "$(bench_acme_field pg3 .completed)/$(bench_acme_field pg3 .failed)"
row "orders/s" orders_per_s 1
row "p50 latency ms" p50_ms 1
row "p99 latency ms" p99_ms 1
row "server CPU ms/order" server_cpu_ms_per_order 2
row "database CPU ms/order" db_cpu_ms_per_order 2
row "driver CPU ms/order" driver_cpu_ms_per_order 2
printf "%-26s %12s %12s %12s\n" "balancer CPU ms/order" "-" "-" "${LB_CPU_MS:--}"
row "server peak RSS MB (sum)" server_peak_rss_mb 1
row "requests/order" requests_per_order 1
