#!/usr/bin/env bash
# ACME orders benchmark, side by side: Pebble, then ironseal, in one run.
#
#   scripts/bench-acme.sh [N] [C]       N orders (default 1000), C clients (default 16)
#
# Environment:
#   CARGO_TARGET_DIR   where to build / find binaries (default: <repo>/target)
#   MAX_SECONDS        --max-seconds cap for each bench_acme run (default 300)
#   STALL_SECONDS      --stall-seconds: abort a run when no order finishes for this long (default 10)
#   PEBBLE_TRIES       runs of Pebble (fresh process each) while it stalls (default 3)
#   PEBBLE_AS_SHIPPED=1  run Pebble without PEBBLE_VA_NOSLEEP (its validation
#                      sleeps, as installed); default: PEBBLE_VA_NOSLEEP=1
#   SKIP_BUILD=1       do not run cargo build (use existing binaries)
#   KEEP=1             keep the work dir (configs, certs, server logs, outputs)
#   IRONSEAL=path      ironseal binary to use (default $CARGO_TARGET_DIR/release/ironseal)
#
# Everything listens on 127.0.0.1 on free ports. pebble-challtestsrv serves
# only fake DNS (every name -> 127.0.0.1, no AAAA) so the server under test
# reaches the driver's http-01 responder for o<random>.bench.test.
# Figures are defined in docs/benchmarks.md ("ACME orders").
set -euo pipefail

N=${1:-1000}
C=${2:-16}
MAX_SECONDS=${MAX_SECONDS:-300}
STALL_SECONDS=${STALL_SECONDS:-10}
PEBBLE_TRIES=${PEBBLE_TRIES:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET/release/bench_acme
IRONSEAL=${IRONSEAL:-$TARGET/release/ironseal}

for tool in pebble pebble-challtestsrv openssl curl jq python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-acme: missing $tool (see scripts/install-test-deps.sh)" >&2; exit 2; }
done

WORK=$(mktemp -d -t bench-acme.XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "bench-acme: work dir (logs, configs) kept in $WORK" >&2
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

# N distinct free loopback TCP ports (held open together so they differ).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_https URL CAFILE SECONDS PID: until URL answers 200 over TLS trusted by CAFILE.
wait_https() {
  local url=$1 ca=$2 secs=$3 pid=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -s $ca ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$ca" "$url" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "bench-acme: cargo build --release -p ironseal -p ironseal-conformance (CARGO_TARGET_DIR=$TARGET)"
  if ! (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p ironseal -p ironseal-conformance); then
    echo "bench-acme: full build failed; building only the driver (ironseal half may be skipped)" >&2
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p ironseal-conformance --bin bench_acme)
  fi
fi
[[ -x $BENCH ]] || { echo "bench-acme: $BENCH not built" >&2; exit 2; }

read -r DNS_PORT CTS_MGMT PEBBLE_PORT PEBBLE_MGMT PEBBLE_TLS H01_PEBBLE IS_PORT IS_HTTP IS_TLSALPN H01_IS <<<"$(free_ports 10)"

echo "bench-acme: N=$N C=$C, work dir $WORK, $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg)"

# Fake DNS only: all A queries -> 127.0.0.1, no AAAA, no challenge servers.
pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
  -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
  -management "127.0.0.1:$CTS_MGMT" >"$WORK/challtestsrv.log" 2>&1 &
PIDS+=($!)
CTS_PID=$!
for ((i = 0; i < 100; i++)); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$CTS_MGMT/" && break
  kill -0 "$CTS_PID" 2>/dev/null || { cat "$WORK/challtestsrv.log" >&2; exit 1; }
  sleep 0.1
done

run_bench() { # label directory cafile http01port pid -> prints block; JSON line to $WORK/<label>.json
  local label=$1 dir=$2 ca=$3 port=$4 pid=$5 rc=0
  "$BENCH" --label "$label" --directory "$dir" --ca-cert "$ca" --orders "$N" --concurrency "$C" \
    --http01-port "$port" --server-pid "$pid" --max-seconds "$MAX_SECONDS" --stall-seconds "$STALL_SECONDS" >"$WORK/$label.out" 2>&1 || rc=$?
  cat "$WORK/$label.out"
  grep '^{"bench":"acme"' "$WORK/$label.out" | tail -n 1 >"$WORK/$label.json" || true
  [[ $rc == 0 ]] || echo "bench-acme: bench_acme for $label exited with $rc" >&2
  echo
}

# ---------------------------------------------------------------------------
# 1) Pebble. The Debian package ships no test/certs (the +ds tarball drops
# them), so make a throwaway CA and a localhost/127.0.0.1 cert for its HTTPS.
P=$WORK/pebble
mkdir -p "$P"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$P/ca.key" -out "$P/ca.pem" -subj "/CN=bench-acme throwaway CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$P/key.pem" -out "$P/csr.pem" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$P/leaf.ext"
openssl x509 -req -in "$P/csr.pem" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
  -extfile "$P/leaf.ext" -out "$P/cert.pem" 2>/dev/null
cat >"$P/config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT",
    "certificate": "$P/cert.pem",
    "privateKey": "$P/key.pem",
    "httpPort": $H01_PEBBLE,
    "tlsPort": $PEBBLE_TLS,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
EOF
# Pebble 2.4 can deadlock under this load (its WFE authz handler holds an
# authz lock while taking the MemoryStore read lock, newOrder's
# FindValidAuthorization takes them in the other order, and Go's RWMutex queues
# readers behind a waiting writer). bench_acme then reports STALLED; start a
# fresh Pebble and run again, up to PEBBLE_TRIES times.
for ((try = 1; try <= PEBBLE_TRIES; try++)); do
  rm -f "$WORK/pebble.json"
  PEBBLE_ENV=(PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0)
  [[ ${PEBBLE_AS_SHIPPED:-0} == 1 ]] || PEBBLE_ENV+=(PEBBLE_VA_NOSLEEP=1)
  env "${PEBBLE_ENV[@]}" \
    pebble -config "$P/config.json" -dnsserver "127.0.0.1:$DNS_PORT" >"$WORK/pebble.$try.log" 2>&1 &
  PEBBLE_PID=$!
  PIDS+=($PEBBLE_PID)
  if wait_https "https://localhost:$PEBBLE_PORT/dir" "$P/ca.pem" 30 "$PEBBLE_PID"; then
    echo "bench-acme: pebble $(dpkg-query -W -f="\${Version}" pebble) pid $PEBBLE_PID on 127.0.0.1:$PEBBLE_PORT (attempt $try/$PEBBLE_TRIES)"
    run_bench pebble "https://localhost:$PEBBLE_PORT/dir" "$P/ca.pem" "$H01_PEBBLE" "$PEBBLE_PID"
  else
    echo "bench-acme: pebble did not become ready; log tail:" >&2
    tail -n 20 "$WORK/pebble.$try.log" >&2
  fi
  stop "$PEBBLE_PID"
  if [[ -s $WORK/pebble.json && $(jq -r .stalled "$WORK/pebble.json") == true && $try -lt $PEBBLE_TRIES ]]; then
    echo "bench-acme: pebble stalled (known Pebble 2.4 lock-order deadlock); retrying with a fresh Pebble"
    cp "$WORK/pebble.out" "$WORK/pebble.stalled.$try.out"
    continue
  fi
  break
done

# ---------------------------------------------------------------------------
# 2) ironseal.
if [[ ! -x $IRONSEAL ]]; then
  echo "bench-acme: SKIPPING ironseal: $IRONSEAL does not exist (server binary not built yet)"
  echo
else
  DATA=$WORK/ironseal-data # fresh, empty: ironseal creates the CA and root.pem
  mkdir "$DATA"
  "$IRONSEAL" serve --data-dir "$DATA" --listen "127.0.0.1:$IS_PORT" --http-listen "127.0.0.1:$IS_HTTP" \
    --hostname localhost --hostname 127.0.0.1 --test-dns-resolver "127.0.0.1:$DNS_PORT" \
    --test-http01-port "$H01_IS" --test-tlsalpn01-port "$IS_TLSALPN" --log-format json \
    >"$WORK/ironseal.log" 2>&1 &
  IS_PID=$!
  PIDS+=($IS_PID)
  if wait_https "https://localhost:$IS_PORT/directory" "$DATA/root.pem" 30 "$IS_PID"; then
    echo "bench-acme: ironseal pid $IS_PID on 127.0.0.1:$IS_PORT"
    run_bench ironseal "https://localhost:$IS_PORT/directory" "$DATA/root.pem" "$H01_IS" "$IS_PID"
  else
    echo "bench-acme: ironseal did not become ready (GET /directory with $DATA/root.pem); log tail:" >&2
    tail -n 20 "$WORK/ironseal.log" >&2
  fi
  stop "$IS_PID"
fi

# ---------------------------------------------------------------------------
# Side-by-side summary.
field() { # label jq-expr
  local f=$WORK/$1.json
  if [[ -s $f ]]; then jq -r "$2 // \"n/a\"" "$f"; else echo "-"; fi
}
num() { # label key decimals
  local v
  v=$(field "$1" ".$2")
  if [[ $v =~ ^-?[0-9.]+(e-?[0-9]+)?$ ]]; then printf "%.${3}f" "$v"; else printf "%s" "$v"; fi
}
ratio() { # key: ironseal/pebble
  local a b
  a=$(field ironseal ".$1"); b=$(field pebble ".$1")
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($b > 0)}"; then
    awk "BEGIN{printf \"%.2fx\", $a / $b}"
  else
    printf "-"
  fi
}
echo "== ACME orders: N=$N C=$C on $(nproc) cores =="
printf "%-24s %14s %14s %12s\n" "" "pebble" "ironseal" "ironseal/pebble"
row() { printf "%-24s %14s %14s %12s\n" "$1" "$(num pebble "$2" "$3")" "$(num ironseal "$2" "$3")" "$(ratio "$2")"; }
cf() { # completed/failed, marked when the run stalled
  local mark=""
  [[ $(field "$1" .stalled) == true ]] && mark=" STALLED"
  printf "%s/%s%s" "$(field "$1" .completed)" "$(field "$1" .failed)" "$mark"
}
printf "%-24s %14s %14s\n" "completed/failed" "$(cf pebble)" "$(cf ironseal)"
row "orders/s" orders_per_s 1
row "p50 latency ms" p50_ms 1
row "p99 latency ms" p99_ms 1
row "server CPU ms/order" server_cpu_ms_per_order 2
row "server peak RSS MB" server_peak_rss_mb 1
row "server final RSS MB" server_final_rss_mb 1
row "requests/order" requests_per_order 1
