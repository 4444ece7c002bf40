#!/usr/bin/env bash
# Scale-out benchmark (issue 11), side by side in one run:
#   sled     one ironseal process on its embedded store
#   pg1      one ironseal process on PostgreSQL
#   pg1lb    the same process reached through HAProxy
#   pg3      three ironseal replicas on one PostgreSQL behind HAProxy
#            (round robin per request; the set-up of
#            conformance/tests/scale_out.rs and docs/scale-out.md)
# All are started first; then each round runs N complete ACME orders with C
# clients (bench_acme, the driver of scripts/bench-acme.sh) against every
# set-up in turn (the order rotated each round, the others idle), and the
# table shows the means over the rounds: orders/s, server CPU per order
# (summed over the replicas, from /proc), database CPU per order
# (postmaster and backends, from /proc) and the balancer's CPU per order.
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
#   ROUNDS             rounds (default 2)
#   WARMUP             orders of the uncounted warm-up run per set-up (default N/5)
#   PG1_POOL           the one PostgreSQL process's pool (default 16 connections)
#   PG3_POOL           each replica's pool (default 6: three replicas hold about
#                      as many connections as the one process)
#   REPLICA_WORKERS    tokio worker threads per replica (default: one per core,
#                      tokio's default, as the one process has)
#   PERF_STAT=1        also count the server processes' context switches per
#                      order (`perf stat -e context-switches`; needs perf)
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
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-$((N / 5))}
PG1_POOL=${PG1_POOL:-16}
PG3_POOL=${PG3_POOL:-6}
REPLICA_WORKERS=${REPLICA_WORKERS:-}
PERF_STAT=${PERF_STAT:-0}
declare -A LB_MS CS
LB_MODE=${LB_MODE:-http}
[[ $LB_MODE == http || $LB_MODE == tcp ]] || { echo "bench-scale-out: LB_MODE must be http or tcp" >&2; exit 2; }

bench_need_tools --hint pebble-challtestsrv haproxy openssl curl jq python3 psql
[[ $PERF_STAT != 1 ]] || bench_need_tools perf

bench_work_dir
chmod 0755 "$WORK"
PGDIR=""
stop_pg() { [[ -z $PGDIR ]] || "$ROOT/scripts/pg-throwaway.sh" stop "$PGDIR" >/dev/null 2>&1; }
bench_at_exit stop_pg
BENCH_KEEP_NOTE="(logs, configs)"
bench_cleanup_on_exit

bench_build -p ironseal -p ironseal-conformance
[[ -x $BENCH && -x $IRONSEAL ]] || { echo "bench-scale-out: $BENCH or $IRONSEAL not built" >&2; exit 2; }

# The first port (the servers' HTTPS port) is also free on 127.0.0.2..6:
# replicas on .2-.4, the one PostgreSQL process on .5, its balancer on .6.
read -r PORT DNS_PORT CTS_MGMT H01 TLSALPN LB_HTTP HTTP0 HTTP1 HTTP2 HTTP3 HTTP4 SPORT <<<"$(bench_free_ports 12 5)"
HTTPS=("$HTTP1" "$HTTP2" "$HTTP3")
ADMIN_KEY="isk_bench_$(openssl rand -hex 16)"
PG1_IP=127.0.0.5
PG1_LB_IP=127.0.0.6

echo "bench-scale-out: N=$N C=$C, $ROUNDS rounds, work dir $WORK, $(nproc) cores, load average $(bench_load_avg)"

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
fail_start() { # label log
  echo "bench-scale-out: $1 did not start:" >&2
  tail -n 20 "$2" >&2
  exit 1
}

# ---------------------------------------------------------------------------
# sled, one process, on 127.0.0.1 with its own port (as scripts/bench-acme.sh).
serve sled "$WORK/sled-data" "127.0.0.1:$SPORT" "$HTTP0" "http://127.0.0.1:$HTTP0"
SLED_PID=$PID
bench_wait_https "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" 60 "$PID" || fail_start sled "$WORK/sled.log"

# ---------------------------------------------------------------------------
# PostgreSQL, throwaway.
PG_FSYNC=${PG_FSYNC:-on}
[[ $PG_FSYNC == on || $PG_FSYNC == off ]] || { echo "bench-scale-out: PG_FSYNC must be on or off" >&2; exit 2; }
PGDIR=$(PG_DURABLE=$([[ $PG_FSYNC == on ]] && echo 1 || echo 0) "$ROOT/scripts/pg-throwaway.sh" start)
PGURL=$("$ROOT/scripts/pg-throwaway.sh" url "$PGDIR")
PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
db_config() { # name pool-size -> config file path
  psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >/dev/null
  printf '[storage]\nbackend = "postgres"\nurl = "%s"\npool_size = %s\n' "${PGURL%/postgres}/$1" "$2" >"$WORK/$1.toml"
  echo "$WORK/$1.toml"
}
echo "bench-scale-out: PostgreSQL $(psql "$PGURL" -X -tA -c 'SHOW server_version') postmaster pid $PGPID ($PGDIR)"

# One process on PostgreSQL: on 127.0.0.5, reached directly ("pg1") and
# through the balancer on 127.0.0.6 ("pg1lb").
serve pg1 "$WORK/pg1-data" "$PG1_IP:$PORT" "$HTTP4" "http://127.0.0.1:$HTTP4" \
  --hostname "$PG1_LB_IP" --config "$(db_config pg1 "$PG1_POOL")" --kek-file "$WORK/pg1.kek"
PG1_PID=$PID
bench_wait_https "https://$PG1_IP:$PORT/directory" "$WORK/pg1-data/root.pem" 60 "$PID" || fail_start pg1 "$WORK/pg1.log"

# Three replicas on one database, on 127.0.0.2-4, behind the balancer on 127.0.0.1.
CONF=$(db_config pg3 "$PG3_POOL")
RPIDS=()
[[ -z $REPLICA_WORKERS ]] || export TOKIO_WORKER_THREADS=$REPLICA_WORKERS
for ((r = 0; r < REPLICAS; r++)); do
  ip=127.0.0.$((r + 2))
  serve "pg3-r$r" "$WORK/pg3-r$r" "$ip:$PORT" "${HTTPS[$r]}" "http://127.0.0.1:$LB_HTTP" --config "$CONF" --kek-file "$WORK/pg3.kek"
  RPIDS+=("$PID")
  # The first replica bootstraps the CA; the others start after it.
  bench_wait_https "https://$ip:$PORT/directory" "$WORK/pg3-r$r/root.pem" 60 "$PID" || fail_start "pg3-r$r" "$WORK/pg3-r$r.log"
done
unset TOKIO_WORKER_THREADS
ROOTPEM=$WORK/pg3-r0/root.pem
PG1_ROOT=$WORK/pg1-data/root.pem

# HAProxy's certificate for localhost and 127.0.0.6, from the replicas' CA (admin API).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/lb.key" \
  -out "$WORK/lb.csr" -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:$PG1_LB_IP" 2>/dev/null
jq -n --rawfile csr "$WORK/lb.csr" '{csrPem: $csr}' >"$WORK/lb.req.json"
curl -sf --cacert "$ROOTPEM" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/lb.req.json" "https://127.0.0.2:$PORT/admin/v1/certificates" >"$WORK/lb.issued.json"
{ jq -r .certificatePem "$WORK/lb.issued.json"; jq -r .chainPem "$WORK/lb.issued.json"; cat "$WORK/lb.key"; } >"$WORK/lb.pem"
if [[ $LB_MODE == tcp ]]; then
  # Layer 4: TLS passes through to the servers (each client's kept-alive
  # connection stays on one replica; connections are spread round robin).
  # The clients then see the servers' own certificates.
  PG3_CA=$ROOTPEM PG1_LB_CA=$PG1_ROOT
  {
    cat <<CFG
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
frontend acme_pg1
    bind $PG1_LB_IP:$PORT
    default_backend pg1_https
backend pg1_https
    default-server check inter 1s fall 2 rise 2
    server p1 $PG1_IP:$PORT
backend ironseal_https
    balance roundrobin
    default-server check inter 1s fall 2 rise 2
CFG
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.$((r + 2)):$PORT"; done
  } >"$WORK/haproxy.cfg"
else
  # Layer 7: TLS terminated (HAProxy's certificate from the replicas' CA)
  # and re-encrypted to the servers, every request balanced.
  PG3_CA=$ROOTPEM PG1_LB_CA=$ROOTPEM
  check() { # CA file
    echo "    option httpchk"
    echo "    http-check send meth GET uri /directory ver HTTP/1.1 hdr Host localhost:$PORT"
    echo "    http-check expect status 200"
    echo "    default-server ssl verify required ca-file $1 sni str(localhost) verifyhost localhost check inter 1s fall 2 rise 2"
  }
  {
    cat <<CFG
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
frontend acme_pg1
    bind $PG1_LB_IP:$PORT ssl crt $WORK/lb.pem alpn http/1.1
    default_backend pg1_https
backend pg1_https
CFG
    check "$PG1_ROOT"
    echo "    server p1 $PG1_IP:$PORT"
    echo "backend ironseal_https"
    echo "    balance roundrobin"
    check "$ROOTPEM"
    for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.$((r + 2)):$PORT"; done
  } >"$WORK/haproxy.cfg"
fi
# The replicas' CRL and OCSP URLs (plain HTTP) through the balancer too.
{
  echo "frontend pki"
  echo "    mode http"
  echo "    bind 127.0.0.1:$LB_HTTP"
  echo "    default_backend ironseal_http"
  echo "backend ironseal_http"
  echo "    mode http"
  echo "    balance roundrobin"
  for ((r = 0; r < REPLICAS; r++)); do echo "    server r$r 127.0.0.1:${HTTPS[$r]}"; done
} >>"$WORK/haproxy.cfg"
haproxy -c -q -f "$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
LB_PID=$!
bench_cleanup_add "$LB_PID"
bench_wait_https "https://localhost:$PORT/directory" "$PG3_CA" 30 "$LB_PID" "${RPIDS[@]}" || fail_start HAProxy "$WORK/haproxy.log"
bench_wait_https "https://$PG1_LB_IP:$PORT/directory" "$PG1_LB_CA" 30 "$LB_PID" "$PG1_PID" || fail_start "HAProxy (pg1)" "$WORK/haproxy.log"
LIST=$(IFS=,; echo "${RPIDS[*]}")
echo "bench-scale-out: sled pid $SLED_PID; pg1 pid $PG1_PID (pool $PG1_POOL); pg3 replicas $LIST (pool $PG3_POOL each${REPLICA_WORKERS:+, $REPLICA_WORKERS runtime workers each}) behind haproxy $(haproxy -v | head -n 1 | cut -d' ' -f3) pid $LB_PID, $LB_MODE mode"

# ---------------------------------------------------------------------------
# The rounds: every set-up once per round, the order rotated each round, the
# others idle meanwhile (an idle server costs no measurable CPU).
lb_ticks() { awk '{print $14 + $15}' "/proc/$LB_PID/stat"; }
run_setup() { # setup label
  local t0 t1 perf_pid=""
  if [[ $PERF_STAT == 1 ]]; then
    local pids=$SLED_PID
    case $1 in pg1 | pg1lb) pids=$PG1_PID ;; pg3) pids=$LIST ;; esac
    perf stat -x, -e context-switches -p "$pids" -o "$WORK/$2.perf" &
    perf_pid=$!
  fi
  case $1 in
    sled) bench_acme_run "$2" "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" "$H01" "$SLED_PID" ;;
    pg1) bench_acme_run "$2" "https://$PG1_IP:$PORT/directory" "$PG1_ROOT" "$H01" "$PG1_PID" "$PGPID" ;;
    pg1lb | pg3)
      t0=$(lb_ticks)
      if [[ $1 == pg1lb ]]; then
        bench_acme_run "$2" "https://$PG1_LB_IP:$PORT/directory" "$PG1_LB_CA" "$H01" "$PG1_PID" "$PGPID"
      else
        bench_acme_run "$2" "https://localhost:$PORT/directory" "$PG3_CA" "$H01" "$LIST" "$PGPID"
      fi
      t1=$(lb_ticks)
      awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$(bench_acme_field "$2" .completed)" \
        'BEGIN { if (n > 0) printf "%.3f\n", t * 1000 / hz / n }' >"$WORK/$2.lb"
      ;;
  esac
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    awk -F, -v n="$(bench_acme_field "$2" .completed)" '$3 == "context-switches" && n > 0 { printf "%.1f\n", $1 / n }' \
      "$WORK/$2.perf" >"$WORK/$2.cs"
  fi
}
SETUPS=(sled pg1 pg1lb pg3)
# A warm-up run per set-up first (not counted): the first orders on a fresh
# database ran 10-20 % slower than later ones (tables and indexes growing
# from empty, caches filling).
if ((WARMUP > 0)); then
  for s in "${SETUPS[@]}"; do
    echo "bench-scale-out: warm-up: $s ($WARMUP orders)"
    N=$WARMUP run_setup "$s" "$s.warm" >/dev/null
  done
fi
for ((k = 1; k <= ROUNDS; k++)); do
  for ((i = 0; i < ${#SETUPS[@]}; i++)); do
    s=${SETUPS[$(((i + k - 1) % ${#SETUPS[@]}))]}
    echo "bench-scale-out: round $k: $s"
    run_setup "$s" "$s.r$k"
  done
done

# Each set-up's figures: the mean over its rounds (completed and failed summed).
for s in "${SETUPS[@]}"; do
  cat "$WORK/$s".r*.json 2>/dev/null | jq -s '
    if length == 0 then empty else
    . as $runs
    | reduce ($runs[0] | keys_unsorted[]) as $k ({};
        .[$k] = (if ($runs[0][$k] | type) == "number"
                 then ([$runs[][$k] | select(type == "number")] | if length > 0 then add / length else null end)
                 else $runs[0][$k] end))
    | .completed = ([$runs[].completed] | add) | .failed = ([$runs[].failed] | add)
    | .per_round = [$runs[].orders_per_s] end' >"$WORK/$s.json"
done
for s in "${SETUPS[@]}"; do
  CS[$s]=$(cat "$WORK/$s".r*.cs 2>/dev/null | awk '{ t += $1; n++ } END { if (n > 0) printf "%.1f", t / n; else printf "-" }') || true
done
for s in pg1lb pg3; do
  LB_MS[$s]=$(cat "$WORK/$s".r*.lb | awk '{ t += $1; n++ } END { if (n > 0) printf "%.2f", t / n; else printf "-" }')
done

# Database work per completed order (pg_stat_database of the whole run, warm-up included:
# transactions, rows read, rows written); database pg1 served pg1 and pg1lb.
db_work() { # database orders label
  psql "$PGURL" -X -tA -F' ' -c "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched,
      tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = '$1'" |
    awk -v n="$2" -v l="$3" '{ if (n > 0) printf "bench-scale-out: %s: database per order: %.1f transactions, %.1f rows read, %.1f rows written\n", l, $1 / n, $2 / n, $3 / n }'
}
done_orders() { # set-up...: completed orders, warm-up included
  local s n=0 w
  for s in "$@"; do
    w=$(bench_acme_field "$s.warm" .completed)
    [[ $w =~ ^[0-9]+$ ]] || w=0
    n=$((n + $(bench_acme_field "$s" .completed) + w))
  done
  echo "$n"
}
db_work pg1 "$(done_orders pg1 pg1lb)" "pg1 and pg1lb"
db_work pg3 "$(done_orders pg3)" pg3

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
echo "== Scale-out: N=$N C=$C x $ROUNDS rounds (after $WARMUP warm-up orders each) on $(nproc) cores, PostgreSQL fsync $PG_FSYNC, balancer $LB_MODE mode, pools $PG1_POOL / $PG3_POOL x $REPLICAS, load average before $(bench_load_avg) =="
echo "   (means over the rounds; pg 1+lb: the one process behind the same balancer)"
line() { printf '%-26s %10s %10s %10s %10s %9s %9s %9s\n' "$@"; }
line "" "sled" "pg 1" "pg 1+lb" "pg 3+lb" "pg1/sled" "pg3/pg1" "pg3/1+lb"
row() {
  line "$1" "$(bench_acme_num sled "$2" "$3")" "$(bench_acme_num pg1 "$2" "$3")" "$(bench_acme_num pg1lb "$2" "$3")" \
    "$(bench_acme_num pg3 "$2" "$3")" "$(ratio pg1 sled "$2")" "$(ratio pg3 pg1 "$2")" "$(ratio pg3 pg1lb "$2")"
}
cf() { echo "$(bench_acme_field "$1" .completed)/$(bench_acme_field "$1" .failed)"; }
line "completed/failed" "$(cf sled)" "$(cf pg1)" "$(cf pg1lb)" "$(cf pg3)"
row "orders/s" orders_per_s 1
rounds() { bench_acme_field "$1" '.per_round | map(. * 10 | round / 10) | join("/")'; }
line "orders/s each round" "$(rounds sled)" "$(rounds pg1)" "$(rounds pg1lb)" "$(rounds pg3)"
row "p50 latency ms" p50_ms 1
row "p99 latency ms" p99_ms 1
row "server CPU ms/order" server_cpu_ms_per_order 2
row "database CPU ms/order" db_cpu_ms_per_order 2
row "driver CPU ms/order" driver_cpu_ms_per_order 2
line "balancer CPU ms/order" "-" "-" "${LB_MS[pg1lb]}" "${LB_MS[pg3]}"
[[ $PERF_STAT != 1 ]] || line "server context switches/order" "${CS[sled]}" "${CS[pg1]}" "${CS[pg1lb]}" "${CS[pg3]}"
row "server peak RSS MB (sum)" server_peak_rss_mb 1
row "requests/order" requests_per_order 1
