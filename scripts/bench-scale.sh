#!/usr/bin/env bash
# Scale benchmark: OCSP and issuance latency with N_SMALL and N_LARGE stored
# certificates, side by side, plus the time to read R revocations from sled
# and build the CRL. A command that prints figures, not a test.
#
#   scripts/bench-scale.sh [N_SMALL] [N_LARGE]     defaults 1000 and 1000000
#
# Environment:
#   CARGO_TARGET_DIR  where to build / find binaries (default: <repo>/target)
#   SKIP_BUILD=1      do not run cargo build
#   WORK_DIR          where the data directories go (default: mktemp -d -t bench-scale.XXXXXX);
#                     a 1,000,000-certificate store takes about 3 GB
#   KEEP=1            keep WORK_DIR (data directories, logs, request files)
#   ROUNDS            measurement rounds (default 3), alternating small/large, large/small, ...
#   SAMPLE            seeded serials the OCSP runs ask about, per size (default 50000, at most N;
#                     stays under ironseal's OCSP cache bound of 100,000 responses)
#   SECS              seconds per timed OCSP run (default 10)
#   C                 OCSP client connections (default 32)
#   THREADS           OCSP client runtime threads (default 1; the machine has 2 cores)
#   ORDERS            ACME orders per issuance run (default 1000)
#   ACME_C            concurrent ACME clients (default 8)
#   CRL_REVOKED       revocations for the CRL part (default 1000000; 0 skips it)
#   DER_BYTES         size of the placeholder DER in seeded records (default 650)
#   SNAPSHOT_MAX_MB   restore a seeded store this small before every round (default 500)
#   IRONSEAL=path     ironseal binary (default $CARGO_TARGET_DIR/release/ironseal)
#
# Per size: seed a fresh data dir (storage/examples/seed_store.rs), then per
# round start ironseal on it and run bench_ocsp (GET first fetch, GET cached,
# POST with nonce) and bench_acme (ORDERS complete orders); at the end the
# store-level latency (storage/examples/lookup_latency.rs), and the CRL part
# (storage/examples/crl_from_store.rs, then the server's own first build).
# Everything listens on 127.0.0.1 on free ports; pebble-challtestsrv serves
# fake DNS only (every name -> 127.0.0.1). All processes are stopped on exit.
# Figures are defined in docs/benchmarks.md ("Scale").
set -euo pipefail

N_SMALL=${1:-1000}
N_LARGE=${2:-1000000}
ROUNDS=${ROUNDS:-3}
SAMPLE=${SAMPLE:-50000}
SECS=${SECS:-10}
C=${C:-32}
THREADS=${THREADS:-1}
ORDERS=${ORDERS:-1000}
ACME_C=${ACME_C:-8}
CRL_REVOKED=${CRL_REVOKED:-1000000}
DER_BYTES=${DER_BYTES:-650}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-scale
BENCH_OCSP=$TARGET/release/bench_ocsp
BENCH_ACME=$TARGET/release/bench_acme
SEED=$TARGET/release/examples/seed_store
CRL_FROM_STORE=$TARGET/release/examples/crl_from_store
LOOKUP=$TARGET/release/examples/lookup_latency
ADMIN_KEY=isk_bench_scale_unused # first start only: the admin API is not used

bench_need_tools --hint pebble-challtestsrv openssl curl jq python3
[[ $N_SMALL =~ ^[0-9]+$ && $N_LARGE =~ ^[0-9]+$ && $N_SMALL -ge 1 && $N_LARGE -ge 1 ]] \
  || { echo "usage: $0 [N_SMALL] [N_LARGE]" >&2; exit 2; }

if bench_want_build; then
  echo "bench-scale: cargo build --release (CARGO_TARGET_DIR=$TARGET)"
  bench_cargo_build -p ironseal -p ironseal-conformance --bin ironseal --bin bench_ocsp --bin bench_acme
  bench_cargo_build -p ironseal-storage --example seed_store --example crl_from_store --example lookup_latency
fi
for b in "$IRONSEAL" "$BENCH_OCSP" "$BENCH_ACME" "$SEED" "$CRL_FROM_STORE" "$LOOKUP"; do
  [[ -x $b ]] || { echo "bench-scale: $b missing (build it or drop SKIP_BUILD)" >&2; exit 2; }
done

if [[ -n ${WORK_DIR:-} ]]; then
  mkdir -p "$WORK_DIR"
  WORK=$(mktemp -d "$WORK_DIR/bench-scale.XXXXXX")
else
  bench_work_dir
fi
cleanup() { # unlike bench_cleanup, a failed run's work dir goes too (its stores can take GBs), after its logs
  local rc=$?
  bench_stop_all
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "bench-scale: work dir kept in $WORK" >&2
  else
    [[ $rc -ne 0 ]] && echo "bench-scale: failed; logs follow" >&2 && tail -n 5 "$WORK"/*.log >&2 2>/dev/null
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}'; }
hwm_mb() { awk '/^VmHWM:/{printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_mb() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

RESULTS=$WORK/results.txt
: >"$RESULTS"
record() { echo "R $*" >>"$RESULTS"; }

read -r DNS_PORT CTS_MGMT <<<"$(bench_free_ports 2)"
bench_start_challtestsrv "$DNS_PORT" "$CTS_MGMT"

# start_server DATA LOG: starts ironseal on fresh loopback ports; sets IS_PID,
# IS_PORT, IS_HTTP, H01 and STARTUP_S (spawn until GET /directory answers 200).
start_server() {
  local data=$1 log=$2 alpn t0 rc=0
  read -r IS_PORT IS_HTTP H01 alpn <<<"$(bench_free_ports 4)"
  t0=$(now)
  bench_start_ironseal "$log" "$ADMIN_KEY" --data-dir "$data" \
    --listen "127.0.0.1:$IS_PORT" --http-listen "127.0.0.1:$IS_HTTP" \
    --http-public-url "http://127.0.0.1:$IS_HTTP" --hostname localhost --hostname 127.0.0.1 \
    --test-dns-resolver "127.0.0.1:$DNS_PORT" --test-http01-port "$H01" --test-tlsalpn01-port "$alpn"
  IS_PID=$BENCH_PID
  bench_wait_https "https://localhost:$IS_PORT/directory" "$data/root.pem" 600 "$IS_PID" || rc=$?
  case $rc in
    0) STARTUP_S=$(since "$t0") ;;
    1) echo "bench-scale: ironseal exited; log tail:" >&2; tail -n 20 "$log" >&2; exit 1 ;;
    *) echo "bench-scale: ironseal did not become ready in 600 s" >&2; exit 1 ;;
  esac
}

# prepare LABEL N REVOKED [SAMPLE]: a data dir whose CA was created by one
# `ironseal serve` (which, when SAMPLE > 0, also issues 3 certificates through
# ACME for the OCSP runs), then seeded with the server stopped (sled is locked
# while it runs). A store under SNAPSHOT_MAX_MB (default 500) is copied aside
# so each round starts from the same store (the issuance runs add ORDERS
# certificates per round: 3,000 over 3 rounds would triple a 1,000-certificate
# store; for a larger store they are left in, a 0.3 % change at 1,000,000).
prepare() {
  local label=$1 n=$2 revoked=$3 sample=${4:-0} d=$WORK/$1
  mkdir -p "$d"
  start_server "$d/data" "$d/init.log"
  if [[ $sample -gt 0 ]]; then
    "$BENCH_OCSP" issue --directory "https://localhost:$IS_PORT/directory" --ca-cert "$d/data/root.pem" \
      --http01-port "$H01" --count 3 --out "$d/acme" >/dev/null
  fi
  bench_stop "$IS_PID"
  local args=(--data-dir "$d/data" --certs "$n" --revoked "$revoked" --issuer-pem-out "$d/issuer.pem" --der-bytes "$DER_BYTES")
  [[ $sample -gt 0 ]] && args+=(--sample "$sample" --sample-out "$d/serials.txt")
  local t0 secs
  t0=$(now)
  "$SEED" "${args[@]}" | tee "$d/seed.log" | grep -v ' inserted, '
  secs=$(since "$t0")
  echo "bench-scale: $label: seeded in $secs s (load $(bench_load_avg))"
  record "size=$label name=seed secs=$secs disk_mb=$(du -sm "$d/data/db" | cut -f1)"
  if [[ $sample -gt 0 ]]; then
    cmp -s <(openssl x509 -in "$d/acme/inter.pem" -outform DER) <(openssl x509 -in "$d/issuer.pem" -outform DER) \
      || { echo "bench-scale: ACME chain's issuer differs from the seeded issuing CA" >&2; exit 1; }
    # Requests: the sampled seeded serials plus the 3 ACME certificates.
    local certs=(--cert "$d/acme/leaf0.pem" --cert "$d/acme/leaf1.pem" --cert "$d/acme/leaf2.pem")
    "$BENCH_OCSP" requests --issuer "$d/issuer.pem" --serials "$d/serials.txt" "${certs[@]}" --out "$d/plain.txt" >/dev/null
    "$BENCH_OCSP" requests --issuer "$d/issuer.pem" --serials "$d/serials.txt" "${certs[@]}" --nonce --out "$d/nonce.txt" >/dev/null
    if [[ $(du -sm "$d/data" | cut -f1) -le ${SNAPSHOT_MAX_MB:-500} ]]; then
      cp -a "$d/data" "$d/seeded"
    fi
  fi
}

ocsp_run() { # ocsp_run ROUND LABEL NAME ARGS...
  local round=$1 label=$2 name=$3 line
  shift 3
  line=$("$BENCH_OCSP" load --name "$name" --url "http://127.0.0.1:$IS_HTTP/ocsp" --connections "$C" \
    --threads "$THREADS" "$@" | tee -a "$WORK/$label/ocsp.out" | grep '^RESULT ')
  echo "  $label $name: ${line#RESULT }"
  record "round=$round size=$label ${line#RESULT }"
}

measure() { # measure ROUND LABEL
  local round=$1 label=$2 d=$WORK/$2 n_req
  echo "bench-scale: round $round, $label store: starting ironseal (load $(bench_load_avg))"
  if [[ -d $d/seeded ]]; then rm -rf "$d/data" && cp -a "$d/seeded" "$d/data"; fi
  start_server "$d/data" "$d/serve.$round.log"
  echo "  ready in $STARTUP_S s"
  record "round=$round size=$label name=startup secs=$STARTUP_S rss_mb=$(rss_mb "$IS_PID")"
  if [[ ! -e $d/checked ]]; then
    # The first seeded serial and the last ACME one must answer `good`, verified by openssl.
    for which in head tail; do
      $which -n 1 "$d/plain.txt" | base64 -d >"$d/check.req"
      curl -sf --data-binary "@$d/check.req" -H 'Content-Type: application/ocsp-request' \
        "http://127.0.0.1:$IS_HTTP/ocsp" -o "$d/check.resp"
      openssl ocsp -respin "$d/check.resp" -reqin "$d/check.req" -issuer "$d/issuer.pem" \
        -CAfile "$d/data/root.pem" -resp_text 2>&1 | grep -q 'Cert Status: good' \
        || { echo "bench-scale: OCSP answer for a $label serial is not a verified 'good'" >&2; exit 1; }
    done
    touch "$d/checked"
  fi
  n_req=$(wc -l <"$d/plain.txt")
  # (1) First GET of every serial: cache miss, store read + signature.
  ocsp_run "$round" "$label" get_miss --requests "$d/plain.txt" --get --max-requests "$n_req" --seconds 600
  # (2) The same GETs again for SECS: answered from the pre-signed cache.
  ocsp_run "$round" "$label" get_cached --requests "$d/plain.txt" --get --seconds "$SECS"
  # (3) POST with a nonce: store read + live signature on every request.
  ocsp_run "$round" "$label" post_nonce --requests "$d/nonce.txt" --seconds "$SECS"
  record "round=$round size=$label name=after_ocsp rss_mb=$(rss_mb "$IS_PID")"
  # (4) Issuance: complete ACME orders.
  "$BENCH_ACME" --label "$label" --directory "https://localhost:$IS_PORT/directory" --ca-cert "$d/data/root.pem" \
    --orders "$ORDERS" --concurrency "$ACME_C" --http01-port "$H01" --server-pid "$IS_PID" \
    --max-seconds 300 --stall-seconds 10 >"$d/acme.$round.out" 2>&1 || echo "bench-scale: bench_acme ($label) failed" >&2
  local j
  j=$(grep '^{"bench":"acme"' "$d/acme.$round.out" | tail -n 1)
  [[ -n $j ]] || { echo "bench-scale: no bench_acme result; see output:" >&2; tail -n 20 "$d/acme.$round.out" >&2; exit 1; }
  echo "  $label acme: $(jq -r '"\(.completed)/\(.orders) orders, \(.orders_per_s*10|round/10) orders/s, p50 \(.p50_ms*10|round/10) ms, p99 \(.p99_ms*10|round/10) ms, \(.server_cpu_ms_per_order*100|round/100) ms CPU/order"' <<<"$j")"
  record "round=$round size=$label $(jq -r '"name=acme rps=\(.orders_per_s) p50_ms=\(.p50_ms) p99_ms=\(.p99_ms) cpu_ms=\(.server_cpu_ms_per_order) ok=\(.completed) bad=\(.failed)"' <<<"$j")"
  record "round=$round size=$label name=server peak_rss_mb=$(hwm_mb "$IS_PID")"
  bench_stop "$IS_PID"
}

echo "bench-scale: N_SMALL=$N_SMALL N_LARGE=$N_LARGE ROUNDS=$ROUNDS SAMPLE=$SAMPLE SECS=$SECS C=$C ORDERS=$ORDERS ACME_C=$ACME_C CRL_REVOKED=$CRL_REVOKED"
echo "bench-scale: work dir $WORK, $(nproc) cores, load average $(bench_load_avg)"
prepare small "$N_SMALL" 0 "$(( N_SMALL < SAMPLE ? N_SMALL : SAMPLE ))"
prepare large "$N_LARGE" 0 "$(( N_LARGE < SAMPLE ? N_LARGE : SAMPLE ))"
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order=(small large); else order=(large small); fi
  for s in "${order[@]}"; do measure "$r" "$s"; done
done
echo "bench-scale: measurements done, load average $(bench_load_avg)"
# The store's share alone (no HTTP, no signing): get_certificate over the
# same sampled serials, then 2,000 insert_certificate (they stay in the store).
for s in small large; do
  "$LOOKUP" "$WORK/$s/data" "$WORK/$s/serials.txt" 200000 2000 | tee "$WORK/$s/lookup.out" | sed "s/^/  $s: /"
  sed -nE "s/.*(get|insert)_certificate.* p50 ([0-9.]+) µs, p99 ([0-9.]+) µs.*/R size=$s name=store_\1 p50_us=\2 p99_us=\3/p" \
    "$WORK/$s/lookup.out" >>"$RESULTS"
done
if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"/{small,large}/{data,seeded}; fi

# ---------------------------------------------------------------------------
# CRL: R revoked certificates of the issuing CA, read from sled and signed.
if [[ $CRL_REVOKED -gt 0 ]]; then
  echo "bench-scale: CRL part, $CRL_REVOKED revocations"
  prepare crl "$CRL_REVOKED" "$CRL_REVOKED"
  d=$WORK/crl
  # (a) Through the store API, no server (crl_from_store).
  line=$("$CRL_FROM_STORE" "$d/data" | tee "$d/crl_from_store.out" | grep '^RESULT ')
  grep -v '^RESULT' "$d/crl_from_store.out"
  record "${line#RESULT }"
  # (b) The server: it builds every CA's CRLs as soon as it is up
  # (housekeeping), and GET /crl/<id>.crl waits for that build.
  start_server "$d/data" "$d/serve.log"
  # The issuing CA's id, as seed_store read it from the store's pin.
  ISSUING=$(sed -n 's/.*, issuing \([A-Za-z0-9_-]*\)).*/\1/p' "$d/seed.log" | head -n 1)
  [[ -n $ISSUING ]] || { echo "bench-scale: no issuing CA in $d/seed.log" >&2; exit 1; }
  rss_ready=$(rss_mb "$IS_PID")
  curl -sf -o "$d/crl.der" "http://127.0.0.1:$IS_HTTP/crl/$ISSUING.crl"
  t_done=$(now)
  peak=$(hwm_mb "$IS_PID")
  read -r since_ready build_ms entries < <(python3 - "$d/serve.log" "$t_done" "$ISSUING" <<'EOF'
import datetime, json, sys
ready = built = None
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    f = e.get("fields", {})
    ts = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
    if f.get("message") == "ironseal ready": ready = ts
    if f.get("message") == "CRLs built" and f.get("ca") == sys.argv[3]: built = f
print(f'{float(sys.argv[2]) - ready:.2f} {built["ms"] if built else "nan"} {built["entries"] if built else "nan"}')
EOF
  )
  t0=$(now)
  openssl crl -inform DER -in "$d/crl.der" -CAfile "$d/issuer.pem" -noout 2>&1 | grep -q 'verify OK' \
    || { echo "bench-scale: the served CRL does not verify against the issuing CA" >&2; exit 1; }
  verify_s=$(since "$t0")
  size_mb=$(awk -v b="$(stat -c %s "$d/crl.der")" 'BEGIN{printf "%.1f", b/1048576}')
  echo "  server: startup $STARTUP_S s; 'ready' -> CRL served ${since_ready} s (of which build+sign ${build_ms} ms, $entries entries, $size_mb MiB);" \
    "RSS at ready $rss_ready MB, peak $peak MB; openssl crl verified it in $verify_s s"
  record "name=crl_server entries=$entries startup_s=$STARTUP_S ready_to_served_s=$since_ready build_ms=$build_ms rss_ready_mb=$rss_ready peak_rss_mb=$peak der_mib=$size_mb"
  bench_stop "$IS_PID"
  if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$d/data"; fi
fi

# ---------------------------------------------------------------------------
python3 - "$RESULTS" "$N_SMALL" "$N_LARGE" <<'EOF'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("R "):
        rows.append(dict(x.split("=", 1) for x in line.split()[1:]))
n_small, n_large = int(sys.argv[2]), int(sys.argv[3])

def vals(size, name, key):
    out = []
    for r in rows:
        if r.get("size") == size and r.get("name") == name and key in r:
            try: out.append(float(r[key]))
            except ValueError: pass
    return out

def med(v):
    return statistics.median(v) if v else float("nan")

def spread(v):
    # Round-to-round spread of one size: (max - min) / median.
    return (max(v) - min(v)) / med(v) if len(v) > 1 and med(v) else 0.0

print()
print(f"== Scale: {n_small:,} vs {n_large:,} stored certificates "
      f"(median over rounds; each round's values in brackets) ==")
print(f'{"":38}{"small":>30}{"large":>30}{"large/small":>12}{"noise":>7}  within 10%?')
verdicts = []
def row(label, name, key, lower_is_better, judged=True, fmt="{:,.2f}"):
    s, l = vals("small", name, key), vals("large", name, key)
    if not s and not l:
        return
    ms, ml = med(s), med(l)
    ratio = ml / ms if ms else float("nan")
    noise = max(spread(s), spread(l))
    br = lambda v: fmt.format(med(v)) + (" [" + "/".join(fmt.format(x) for x in v) + "]" if len(v) > 1 else "")
    verdict = ""
    if judged:
        ok = ratio <= 1.10 if lower_is_better else ratio >= 1 / 1.10
        verdict = "yes" if ok else ("NO (within noise)" if abs(ratio - 1) <= noise else "NO")
        verdicts.append((label, ok))
    print(f"{label:38}{br(s):>30}{br(l):>30}{ratio:>11.2f}x{noise:>6.0%}  {verdict}")

row("startup s (spawn -> /directory)", "startup", "secs", True, judged=False)
for name, label in [("get_miss", "OCSP GET, first fetch"), ("get_cached", "OCSP GET, cached"),
                    ("post_nonce", "OCSP POST with nonce")]:
    row(f"{label}: p50 ms", name, "p50_ms", True)
    row(f"{label}: p99 ms", name, "p99_ms", True)
    row(f"{label}: responses/s", name, "rps", False, fmt="{:,.0f}")
row("issuance: p50 ms", "acme", "p50_ms", True)
row("issuance: p99 ms", "acme", "p99_ms", True)
row("issuance: orders/s", "acme", "rps", False, fmt="{:,.1f}")
row("issuance: server CPU ms/order", "acme", "cpu_ms", True, judged=False)
row("server RSS MB at ready", "startup", "rss_mb", True, judged=False, fmt="{:,.1f}")
row("server RSS MB after the OCSP runs", "after_ocsp", "rss_mb", True, judged=False, fmt="{:,.1f}")
row("server peak RSS MB (end of round)", "server", "peak_rss_mb", True, judged=False, fmt="{:,.1f}")
row("store get_certificate p50 us", "store_get", "p50_us", True, judged=False, fmt="{:,.1f}")
row("store get_certificate p99 us", "store_get", "p99_us", True, judged=False, fmt="{:,.1f}")
row("store insert_certificate p50 us", "store_insert", "p50_us", True, judged=False, fmt="{:,.1f}")
row("store insert_certificate p99 us", "store_insert", "p99_us", True, judged=False, fmt="{:,.1f}")
seed = {r["size"]: r for r in rows if r.get("name") == "seed"}
for s in ("small", "large"):
    if s in seed:
        print(f'seeding {s}: {float(seed[s]["secs"]):,.1f} s, store {seed[s]["disk_mb"]} MB on disk')
print("noise = largest round-to-round spread of one size, (max - min) / median; "
      "'NO (within noise)': the gap is no larger than that spread")
missed = [l for l, ok in verdicts if not ok]
print()
print("target 'OCSP and issuance latency unchanged (within 10%)': "
      + ("met on every figure" if not missed else "MISSED on: " + "; ".join(missed)))
for r in rows:
    if r.get("name") == "crl_from_store":
        print(f'CRL via store API ({int(r["entries"]):,} revocations): read {r["read_s"]} s + parse {r["parse_s"]} s '
              f'+ build/sign {r["build_s"]} s = {r["total_s"]} s, peak {r["peak_mib"]} MiB, {r["der_mib"]} MiB DER')
    if r.get("name") == "crl_server":
        print(f'CRL in the server ({r["entries"]} revocations): ready -> served {r["ready_to_served_s"]} s '
              f'(build+sign {r["build_ms"]} ms), peak RSS {r["peak_rss_mb"]} MB, startup {r["startup_s"]} s')
EOF
echo "bench-scale: done, load average $(bench_load_avg)"
