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
# PostgreSQL is a throwaway cluster (scripts/pg-throwaway.sh: fsync off, on
# loopback); pg1 and pg3 each get a fresh database on it. Figures are
# defined in docs/benchmarks.md ("ACME orders"; "Scale-out").
set -euo pipefail

N=${1:-600}
C=${2:-16}
MAX_SECONDS=${MAX_SECONDS:-300}
STALL_SECONDS=${STALL_SECONDS:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET/release/bench_acme
IRONSEAL=${IRONSEAL:-$TARGET/release/ironseal}
REPLICAS=3

for tool in pebble-challtestsrv haproxy openssl curl jq python3 psql; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-scale-out: missing $tool (see scripts/install-test-deps.sh)" >&2; exit 2; }
done

WORK=$(mktemp -d -t bench-scale-out.XXXXXX)
chmod 0755 "$WORK"
PIDS=()
PGDIR=""
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n $PGDIR ]] && "$ROOT/scripts/pg-throwaway.sh" stop "$PGDIR" >/dev/null 2>&1 || true
  if [[ "${KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "bench-scale-out: work dir (logs, configs) kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop one process we started, by PID
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# N distinct TCP ports free on 127.0.0.1 (the first also on 127.0.0.2..4).
free_ports() {
  python3 - "$1" "$REPLICAS" <<'EOF'
import socket, sys
n, r = int(sys.argv[1]), int(sys.argv[2])
while True:
    socks = []
    for _ in range(n):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    first = socks[0].getsockname()[1]
    try:
        for i in range(2, r + 2):
            t = socket.socket(); t.bind((f"127.0.0.{i}", first)); t.close()
    except OSError:
        continue
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    break
EOF
}

# wait_https URL CAFILE SECONDS PID...: until URL answers 200 over TLS trusted by CAFILE.
wait_https() {
  local url=$1 ca=$2 secs=$3 i p
  shift 3
  for ((i = 0; i < secs * 10; i++)); do
    for p in "$@"; do kill -0 "$p" 2>/dev/null || return 1; done
    if [[ -s $ca ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$ca" "$url" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "bench-scale-out: cargo build --release -p ironseal -p ironseal-conformance (CARGO_TARGET_DIR=$TARGET)"
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p ironseal -p ironseal-conformance)
fi
[[ -x $BENCH && -x $IRONSEAL ]] || { echo "bench-scale-out: $BENCH or $IRONSEAL not built" >&2; exit 2; }

read -r PORT DNS_PORT CTS_MGMT H01 TLSALPN LB_HTTP HTTP0 HTTP1 HTTP2 HTTP3 SPORT <<<"$(free_ports 11)"
HTTPS=("$HTTP1" "$HTTP2" "$HTTP3")
ADMIN_KEY="isk_bench_$(openssl rand -hex 16)"

echo "bench-scale-out: N=$N C=$C, work dir $WORK, $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg)"

pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
  -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
  -management "127.0.0.1:$CTS_MGMT" >"$WORK/challtestsrv.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$CTS_MGMT/" && break
  sleep 0.1
done

# serve LABEL DATA IP:PORT HTTP_PORT PUBLIC_HTTP [extra args...]: starts ironseal, prints its PID.
serve() {
  local label=$1 data=$2 addr=$3 http=$4 public=$5
  local ip=${addr%:*}
  shift 5
  mkdir -p "$data"
  IRONSEAL_INITIAL_ADMIN_KEY=$ADMIN_KEY "$IRONSEAL" serve --data-dir "$data" \
    --listen "$addr" --http-listen "127.0.0.1:$http" --http-public-url "$public" \
    --hostname localhost --hostname 127.0.0.1 --hostname "$ip" \
    --test-dns-resolver "127.0.0.1:$DNS_PORT" --test-http01-port "$H01" --test-tlsalpn01-port "$TLSALPN" \
    --log-format json "$@" >"$WORK/$label.log" 2>&1 &
  PIDS+=($!)
  echo $!
}

run_bench() { # label directory cafile pids [db pid]
  local label=$1 dir=$2 ca=$3 pids=$4 db=${5:-} rc=0
  local extra=()
  [[ -n $db ]] && extra=(--db-pid "$db")
  "$BENCH" --label "$label" --directory "$dir" --ca-cert "$ca" --orders "$N" --concurrency "$C" \
    --http01-port "$H01" --server-pid "$pids" "${extra[@]}" --max-seconds "$MAX_SECONDS" \
    --stall-seconds "$STALL_SECONDS" >"$WORK/$label.out" 2>&1 || rc=$?
  cat "$WORK/$label.out"
  grep '^{"bench":"acme"' "$WORK/$label.out" | tail -n 1 >"$WORK/$label.json" || true
  [[ $rc == 0 ]] || echo "bench-scale-out: bench_acme for $label exited with $rc" >&2
  echo
}

# ---------------------------------------------------------------------------
# 1) sled, one process.
# One process: on 127.0.0.1 with its own port, as scripts/bench-acme.sh does.
PID=$(serve sled "$WORK/sled-data" "127.0.0.1:$SPORT" "$HTTP0" "http://127.0.0.1:$HTTP0")
if wait_https "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" 60 "$PID"; then
  echo "bench-scale-out: sled: ironseal pid $PID"
  run_bench sled "https://localhost:$SPORT/directory" "$WORK/sled-data/root.pem" "$PID"
else
  echo "bench-scale-out: sled server not ready:" >&2; tail -n 20 "$WORK/sled.log" >&2
fi
stop "$PID"

# ---------------------------------------------------------------------------
# PostgreSQL, throwaway.
PGDIR=$("$ROOT/scripts/pg-throwaway.sh" start)
PGURL=$("$ROOT/scripts/pg-throwaway.sh" url "$PGDIR")
PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
db_config() { # name -> config file path
  psql "$PGURL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >/dev/null
  local url=${PGURL%/postgres}/$1
  printf '[storage]\nbackend = "postgres"\nurl = "%s"\npool_size = 16\n' "$url" >"$WORK/$1.toml"
  echo "$WORK/$1.toml"
}
echo "bench-scale-out: PostgreSQL $(psql "$PGURL" -X -tA -c 'SHOW server_version') postmaster pid $PGPID ($PGDIR)"

# 2) PostgreSQL, one replica.
CONF=$(db_config pg1)
PID=$(serve pg1 "$WORK/pg1-data" "127.0.0.1:$SPORT" "$HTTP0" "http://127.0.0.1:$HTTP0" --config "$CONF" --kek-file "$WORK/pg1.kek")
if wait_https "https://localhost:$SPORT/directory" "$WORK/pg1-data/root.pem" 60 "$PID"; then
  echo "bench-scale-out: pg1: ironseal pid $PID"
  run_bench pg1 "https://localhost:$SPORT/directory" "$WORK/pg1-data/root.pem" "$PID" "$PGPID"
else
  echo "bench-scale-out: pg1 server not ready:" >&2; tail -n 20 "$WORK/pg1.log" >&2
fi
stop "$PID"

# 3) PostgreSQL, three replicas behind HAProxy.
CONF=$(db_config pg3)
RPIDS=()
ok=1
for ((r = 0; r < REPLICAS; r++)); do
  ip=127.0.0.$((r + 2))
  pid=$(serve "pg3-r$r" "$WORK/pg3-r$r" "$ip:$PORT" "${HTTPS[$r]}" "http://127.0.0.1:$LB_HTTP" --config "$CONF" --kek-file "$WORK/pg3.kek")
  RPIDS+=("$pid")
  # The first replica bootstraps the CA; the others start after it.
  wait_https "https://$ip:$PORT/directory" "$WORK/pg3-r$r/root.pem" 60 "$pid" || { ok=0; tail -n 20 "$WORK/pg3-r$r.log" >&2; }
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
  haproxy -c -q -f "$WORK/haproxy.cfg"
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  LB_PID=$!
  PIDS+=($LB_PID)
  if wait_https "https://localhost:$PORT/directory" "$ROOTPEM" 30 "$LB_PID" "${RPIDS[@]}"; then
    LIST=$(IFS=,; echo "${RPIDS[*]}")
    echo "bench-scale-out: pg3: replicas $LIST behind haproxy $(haproxy -v | head -n 1 | cut -d' ' -f3) pid $LB_PID (HAProxy's own CPU is not counted)"
    run_bench pg3 "https://localhost:$PORT/directory" "$ROOTPEM" "$LIST" "$PGPID"
  else
    echo "bench-scale-out: HAProxy not ready:" >&2; tail -n 20 "$WORK/haproxy.log" >&2
  fi
else
  echo "bench-scale-out: a pg3 replica did not start" >&2
fi
for pid in "${RPIDS[@]}"; do stop "$pid"; done

# ---------------------------------------------------------------------------
field() { # label jq-expr
  local f=$WORK/$1.json
  if [[ -s $f ]]; then jq -r "$2 // \"n/a\"" "$f"; else echo "-"; fi
}
num() { # label key decimals
  local v
  v=$(field "$1" ".$2")
  if [[ $v =~ ^-?[0-9.]+(e-?[0-9]+)?$ ]]; then printf "%.${3}f" "$v"; else printf "%s" "$v"; fi
}
ratio() { # a b key
  local a b
  a=$(field "$1" ".$3"); b=$(field "$2" ".$3")
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($b > 0)}"; then
    awk "BEGIN{printf \"%.2f\", $a / $b}"
  else
    printf -- "-"
  fi
}
echo "== Scale-out: N=$N C=$C on $(nproc) cores, load average before $(cut -d" " -f1-3 /proc/loadavg) =="
printf "%-26s %12s %12s %12s %10s %10s\n" "" "sled" "pg 1" "pg 3+lb" "pg1/sled" "pg3/pg1"
row() { printf "%-26s %12s %12s %12s %10s %10s\n" "$1" "$(num sled "$2" "$3")" "$(num pg1 "$2" "$3")" "$(num pg3 "$2" "$3")" "$(ratio pg1 sled "$2")" "$(ratio pg3 pg1 "$2")"; }
printf "%-26s %12s %12s %12s\n" "completed/failed" "$(field sled .completed)/$(field sled .failed)" "$(field pg1 .completed)/$(field pg1 .failed)" "$(field pg3 .completed)/$(field pg3 .failed)"
row "orders/s" orders_per_s 1
row "p50 latency ms" p50_ms 1
row "p99 latency ms" p99_ms 1
row "server CPU ms/order" server_cpu_ms_per_order 2
row "database CPU ms/order" db_cpu_ms_per_order 2
row "driver CPU ms/order" driver_cpu_ms_per_order 2
row "server peak RSS MB (sum)" server_peak_rss_mb 1
row "requests/order" requests_per_order 1
