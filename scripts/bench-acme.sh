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
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-acme
BENCH=$TARGET/release/bench_acme

bench_need_tools --hint pebble pebble-challtestsrv openssl curl jq python3

bench_work_dir
BENCH_KEEP_NOTE="(logs, configs)"
bench_cleanup_on_exit

# ---------------------------------------------------------------------------
bench_build -p ironseal -p ironseal-conformance || {
  echo "bench-acme: full build failed; building only the driver (ironseal half may be skipped)" >&2
  bench_cargo_build -p ironseal-conformance --bin bench_acme
}
[[ -x $BENCH ]] || { echo "bench-acme: $BENCH not built" >&2; exit 2; }

read -r DNS_PORT CTS_MGMT PEBBLE_PORT PEBBLE_MGMT PEBBLE_TLS H01_PEBBLE IS_PORT IS_HTTP IS_TLSALPN H01_IS <<<"$(bench_free_ports 10)"

echo "bench-acme: N=$N C=$C, work dir $WORK, $(nproc) cores, load average $(bench_load_avg)"

# Fake DNS only: all A queries -> 127.0.0.1, no AAAA, no challenge servers.
bench_start_challtestsrv "$DNS_PORT" "$CTS_MGMT"

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
  bench_cleanup_add "$PEBBLE_PID"
  if bench_wait_https "https://localhost:$PEBBLE_PORT/dir" "$P/ca.pem" 30 "$PEBBLE_PID"; then
    echo "bench-acme: pebble $(dpkg-query -W -f="\${Version}" pebble) pid $PEBBLE_PID on 127.0.0.1:$PEBBLE_PORT (attempt $try/$PEBBLE_TRIES)"
    bench_acme_run pebble "https://localhost:$PEBBLE_PORT/dir" "$P/ca.pem" "$H01_PEBBLE" "$PEBBLE_PID"
  else
    echo "bench-acme: pebble did not become ready; log tail:" >&2
    tail -n 20 "$WORK/pebble.$try.log" >&2
  fi
  bench_stop "$PEBBLE_PID"
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
  bench_start_ironseal "$WORK/ironseal.log" "" --data-dir "$DATA" --listen "127.0.0.1:$IS_PORT" \
    --http-listen "127.0.0.1:$IS_HTTP" --hostname localhost --hostname 127.0.0.1 \
    --test-dns-resolver "127.0.0.1:$DNS_PORT" --test-http01-port "$H01_IS" --test-tlsalpn01-port "$IS_TLSALPN"
  IS_PID=$BENCH_PID
  if bench_wait_https "https://localhost:$IS_PORT/directory" "$DATA/root.pem" 30 "$IS_PID"; then
    echo "bench-acme: ironseal pid $IS_PID on 127.0.0.1:$IS_PORT"
    bench_acme_run ironseal "https://localhost:$IS_PORT/directory" "$DATA/root.pem" "$H01_IS" "$IS_PID"
  else
    echo "bench-acme: ironseal did not become ready (GET /directory with $DATA/root.pem); log tail:" >&2
    tail -n 20 "$WORK/ironseal.log" >&2
  fi
  bench_stop "$IS_PID"
fi

# ---------------------------------------------------------------------------
# Side-by-side summary.
ratio() { # key: ironseal/pebble
  local a b
  a=$(bench_acme_field ironseal ".$1"); b=$(bench_acme_field pebble ".$1")
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk "BEGIN{exit !($b > 0)}"; then
    awk "BEGIN{printf \"%.2fx\", $a / $b}"
  else
    printf "-"
  fi
}
echo "== ACME orders: N=$N C=$C on $(nproc) cores =="
printf "%-24s %14s %14s %12s\n" "" "pebble" "ironseal" "ironseal/pebble"
row() { printf "%-24s %14s %14s %12s\n" "$1" "$(bench_acme_num pebble "$2" "$3")" "$(bench_acme_num ironseal "$2" "$3")" "$(ratio "$2")"; }
cf() { # completed/failed, marked when the run stalled
  local mark=""
  [[ $(bench_acme_field "$1" .stalled) == true ]] && mark=" STALLED"
  printf "%s/%s%s" "$(bench_acme_field "$1" .completed)" "$(bench_acme_field "$1" .failed)" "$mark"
}
printf "%-24s %14s %14s\n" "completed/failed" "$(cf pebble)" "$(cf ironseal)"
row "orders/s" orders_per_s 1
row "p50 latency ms" p50_ms 1
row "p99 latency ms" p99_ms 1
row "server CPU ms/order" server_cpu_ms_per_order 2
row "server peak RSS MB" server_peak_rss_mb 1
row "server final RSS MB" server_final_rss_mb 1
row "requests/order" requests_per_order 1
