#!/usr/bin/env bash
# EST enrolment benchmark (issue 9): /simpleenroll over TLS 1.3 with
# keep-alive, C concurrent clients (default 16), each enrolment a fresh P-256
# key and CSR made before the timer starts, the CSR base64 wrapped at 64
# columns; ironseal on its default durable storage (sled, flushed before each
# answer) with every issuance audited. Loopback only; bounded in count and time.
#
#   scripts/bench-est.sh [COUNT] [C]   COUNT enrolments (default 10000), C clients (default 16)
#
# Environment:
#   CARGO_TARGET_DIR  where to build / find binaries (default: <repo>/target)
#   SKIP_BUILD=1      do not run cargo build
#   MAX_SECONDS       stop sending after this long (default 60)
#   WARMUP            enrolments before the measured run (default 500)
#   KEEP=1            keep the work dir (data dir, logs)
#   IRONSEAL=path     ironseal binary (default $CARGO_TARGET_DIR/release/ironseal)
#
# Prints enrolments/s, p50/p99 latency and the server's CPU time per
# enrolment (utime + stime of its process, /proc/<pid>/stat). Figures and
# the target are in docs/benchmarks.md ("EST enrolment").
set -euo pipefail

COUNT=${1:-10000}
C=${2:-16}
MAX_SECONDS=${MAX_SECONDS:-60}
WARMUP=${WARMUP:-500}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-est
BENCH=$TARGET/release/bench_est

bench_need_tools openssl curl python3
bench_build -p ironseal -p ironseal-conformance
bench_need_bins "$IRONSEAL" "$BENCH"

bench_work_dir
bench_cleanup_on_exit

read -r PORT HTTP_PORT <<<"$(bench_free_ports 2)"

# A manufacturer CA and one device's bootstrap (IDevID-style) certificate.
M=$WORK/mfg
mkdir "$M"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$M/ca.key" \
  -out "$M/ca.pem" -subj "/O=Bench Device Maker/CN=Bench Device Maker Root" -days 30 \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$M/dev.key" \
  -out "$M/dev.csr" -subj "/O=Bench Device Maker/CN=serial-0001" 2>/dev/null
printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$M/dev.ext"
openssl x509 -req -in "$M/dev.csr" -CA "$M/ca.pem" -CAkey "$M/ca.key" -CAcreateserial -days 30 \
  -extfile "$M/dev.ext" -out "$M/dev.pem" 2>/dev/null

cat >"$WORK/ironseal.toml" <<TOML
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[[est.labels]]
label = "bench"
profile = "devices"
auth = ["bootstrap"]
bootstrap_ca = "$M/ca.pem"

TOML

DATA=$WORK/data
mkdir "$DATA"
bench_start_ironseal "$WORK/ironseal.log" isk_bench_unused --config "$WORK/ironseal.toml" \
  --data-dir "$DATA" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
  --http-public-url "http://127.0.0.1:$HTTP_PORT" --hostname localhost
IS_PID=$BENCH_PID
bench_wait_for 30 "$IS_PID" curl -sf -o /dev/null --cacert "$DATA/root.pem" "https://localhost:$PORT/.well-known/est/bench/cacerts" \
  || { echo "bench-est: ironseal did not start" >&2; tail -n 20 "$WORK/ironseal.log" >&2; exit 1; }

common=(--addr "127.0.0.1:$PORT" --host localhost --ca-cert "$DATA/root.pem"
  --client-cert "$M/dev.pem" --client-key "$M/dev.key" --clients "$C" --max-seconds "$MAX_SECONDS")
echo "bench-est: $(nproc) CPUs, load average $(bench_load_avg) before the run"
echo "--- warm-up ($WARMUP enrolments)"
"$BENCH" "${common[@]}" --count "$WARMUP" --name warmup
echo "--- measured ($COUNT enrolments, $C clients)"
"$BENCH" "${common[@]}" --count "$COUNT" --server-pid "$IS_PID" --name est_simpleenroll | tee "$WORK/result.txt"

echo "bench-est: load average $(bench_load_avg) after the run; data dir $(du -sh "$DATA" | cut -f1)"
python3 - "$WORK/result.txt" <<'PY'
import sys
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        rate, p99 = float(kv["rate"]), float(kv["p99_ms"])
        print(f"target >= 2,500 enrolments/s: {rate:,.0f}/s -> {'met' if rate >= 2500 else 'MISSED'}")
        print(f"target p99 < 30 ms: {p99:.2f} ms -> {'met' if p99 < 30 else 'MISSED'}")
        print(f"server CPU per enrolment: {kv['cpu_ms_per_enrolment']} ms (reference Go server in memory: 0.38 ms)")
        print(f"driver (client) CPU per enrolment: {kv.get('client_cpu_ms_per_enrolment', 'n/a')} ms")
PY
