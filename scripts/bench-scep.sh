#!/usr/bin/env bash
# SCEP enrolment benchmark (issue 8): PKCSReq over plain HTTP/1.1 with
# keep-alive, C concurrent clients (default 16), each enrolment a fresh
# RSA-2048 key, transient signer certificate, CSR and complete PKIMessage
# made before the timer starts. Side by side in one run, with the same
# client load: ironseal on its default durable storage (sled, flushed
# before each answer, every issuance audited) and micromdm's scepserver
# (Debian `scep`, its file depot, CA = RA). Loopback only; bounded in count
# and time.
#
#   scripts/bench-scep.sh [COUNT] [C]   COUNT enrolments (default 1000), C clients (default 16)
#
# Environment:
#   CARGO_TARGET_DIR  where to build / find binaries (default: <repo>/target)
#   SKIP_BUILD=1      do not run cargo build
#   MAX_SECONDS       stop sending after this long (default 60)
#   WARMUP            enrolments before each measured run (default 100)
#   KEEP=1            keep the work dir (data dirs, logs)
#   IRONSEAL=path     ironseal binary (default $CARGO_TARGET_DIR/release/ironseal)
#   SCEPSERVER=path   micromdm scepserver (default: scepserver on PATH)
#   CA_KEY            ironseal's ca_key_algorithm (default p256, ironseal's own default; rsa3072 for an RSA CA)
#
# Prints, per server, enrolments/s, p50/p99 latency and the server's CPU
# time per enrolment (utime + stime of its process, /proc/<pid>/stat), then
# the targets. Figures are in docs/benchmarks.md ("SCEP enrolment").
set -euo pipefail

COUNT=${1:-1000}
C=${2:-16}
MAX_SECONDS=${MAX_SECONDS:-60}
WARMUP=${WARMUP:-100}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-scep
BENCH=$TARGET/release/bench_scep
SCEPSERVER=${SCEPSERVER:-$(command -v scepserver || true)}
CHALLENGE=bench-challenge
CA_KEY=${CA_KEY:-p256}

bench_need_tools curl python3
[[ -x $SCEPSERVER ]] || { echo "bench-scep: scepserver missing (apt-get install scep)" >&2; exit 2; }
bench_build -p ironseal -p ironseal-conformance
bench_need_bins "$IRONSEAL" "$BENCH"

bench_work_dir
bench_cleanup_on_exit

read -r PORT HTTP_PORT MM_PORT <<<"$(bench_free_ports 3)"

# ironseal: the CA of CA_KEY (P-256 by default; rsa3072 is scepclient-compatible, like micromdm's RSA CA), a device profile.
cat >"$WORK/ironseal.toml" <<TOML
ca_key_algorithm = "$CA_KEY"

[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[[scep.profiles]]
path = "bench"
profile = "devices"
challenge = "$CHALLENGE"
TOML
DATA=$WORK/data
mkdir "$DATA"
bench_start_ironseal "$WORK/ironseal.log" isk_bench_unused --config "$WORK/ironseal.toml" \
  --data-dir "$DATA" --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
  --http-public-url "http://127.0.0.1:$HTTP_PORT" --hostname localhost
IS_PID=$BENCH_PID
IS_URL="http://127.0.0.1:$HTTP_PORT/scep/bench"

# micromdm scepserver: its own CA (RSA-2048, also its RA) and depot.
mkdir "$WORK/mm"
(cd "$WORK/mm" && "$SCEPSERVER" ca -init -depot depot -keySize 2048 >/dev/null 2>&1)
(cd "$WORK/mm" && exec "$SCEPSERVER" -depot depot -port "$MM_PORT" -challenge "$CHALLENGE" \
  -allowrenew 0 >"$WORK/scepserver.log" 2>&1) &
MM_PID=$!
bench_cleanup_add "$MM_PID"
MM_URL="http://127.0.0.1:$MM_PORT/scep"

wait_scep() { # URL PID: until URL answers GetCACert (30 s)
  bench_wait_for 30 "$2" curl -sf -o /dev/null "$1?operation=GetCACert" \
    || { echo "bench-scep: $1 does not answer" >&2; tail -n 20 "$WORK"/*.log >&2; exit 1; }
}
wait_scep "$IS_URL" "$IS_PID"
wait_scep "$MM_URL" "$MM_PID"

echo "bench-scep: $(nproc) CPUs, load average $(bench_load_avg) before the run"
run() { # name url pid
  local common=(--url "$2" --challenge "$CHALLENGE" --clients "$C" --max-seconds "$MAX_SECONDS")
  echo "--- $1: warm-up ($WARMUP enrolments)"
  "$BENCH" "${common[@]}" --count "$WARMUP" --name "$1-warmup" | grep -v "^RESULT" || true
  echo "--- $1: measured ($COUNT enrolments, $C clients)"
  "$BENCH" "${common[@]}" --count "$COUNT" --server-pid "$3" --name "$1" | tee -a "$WORK/result.txt" || true
}
run ironseal "$IS_URL" "$IS_PID"
run micromdm "$MM_URL" "$MM_PID"
echo "bench-scep: load average $(bench_load_avg) after the run"

python3 - "$WORK/result.txt" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        r[kv["name"]] = kv
i, m = r["ironseal"], r["micromdm"]
ic, mc = float(i["cpu_ms_per_enrolment"]), float(m["cpu_ms_per_enrolment"])
# micromdm refuses some requests after doing most of the work (its serial
# file race): judge against its CPU per request, the stricter figure.
def per_request(kv, fallback):
    v = kv.get("cpu_ms_per_request", "n/a")
    return fallback if v == "n/a" else float(v)
ir, mr = per_request(i, ic), per_request(m, mc)
print(f"CPU per enrolment: ironseal {ic:.2f} ms, micromdm {mc:.2f} ms -> ratio {ic/mc:.2f}")
print(f"CPU per request (refused included): ironseal {ir:.2f} ms, micromdm {mr:.2f} ms -> ratio {ir/mr:.2f} "
      f"(target <= 0.33: {'met' if ir <= mr/3 else 'MISSED'})")
print(f"enrolments/s: ironseal {i['rate']}, micromdm {m['rate']} "
      f"(target >= micromdm: {'met' if float(i['rate']) >= float(m['rate']) else 'MISSED'})")
print(f"ironseal p99 {i['p99_ms']} ms (target < 50 ms: {'met' if float(i['p99_ms']) < 50 else 'MISSED'})")
PY
