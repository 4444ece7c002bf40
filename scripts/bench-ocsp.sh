#!/usr/bin/env bash
# OCSP responder benchmark, side by side in one run: ironseal, `openssl ocsp`
# (an OpenSSL CA index with 1,000 entries, delegated responder) and a trivial
# fixed-body HTTP server, all driven by the same client (bench_ocsp load).
#
#   scripts/bench-ocsp.sh [SECONDS] [C]   SECONDS per run (default 10), C connections (default 32)
#
# Environment:
#   CARGO_TARGET_DIR  where to build / find binaries (default: <repo>/target)
#   SKIP_BUILD=1      do not run cargo build
#   THREADS           client runtime threads (default 1; the machine has 2 cores)
#   MAX_REQUESTS      per-run cap on responses (default 2000000)
#   KEEP=1            keep the work dir (certificates, requests, logs)
#   IRONSEAL=path     ironseal binary (default $CARGO_TARGET_DIR/release/ironseal)
#
# Figures are defined in docs/benchmarks.md ("OCSP responder").
set -euo pipefail

SECS=${1:-10}
C=${2:-32}
THREADS=${THREADS:-1}
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-ocsp
BENCH=$TARGET/release/bench_ocsp

bench_need_tools openssl curl python3
bench_build -p ironseal -p ironseal-conformance
bench_need_bins "$IRONSEAL" "$BENCH"

# `openssl ocsp -port N` (OpenSSL 3.0) binds every interface. To keep the
# whole run on loopback, re-run inside a private network namespace whose only
# interface is lo (unshare -n; needs root or user namespaces). Without one the
# run continues and says so.
if [[ -z "${BENCH_OCSP_NETNS:-}" ]]; then
  if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare -n env BENCH_OCSP_NETNS=1 SKIP_BUILD=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
  fi
  echo "bench-ocsp: WARNING: no private network namespace; openssl ocsp listens on all interfaces during the run" >&2
fi

bench_work_dir
bench_cleanup_on_exit

read -r IS_PORT IS_HTTP H01 ALPN OSSL_PORT FIXED_PORT <<<"$(bench_free_ports 6)"

b64url() { python3 -c 'import base64,sys,urllib.parse; print(urllib.parse.quote(base64.b64encode(open(sys.argv[1],"rb").read()).decode(), safe=""))' "$1"; }

# ---------------------------------------------------------------------------
# ironseal: fresh CA, three certificates for 127.0.0.1 through ACME.
# ---------------------------------------------------------------------------
DATA=$WORK/ironseal-data
mkdir "$DATA"
bench_start_ironseal "$WORK/ironseal.log" isk_bench_unused --data-dir "$DATA" \
  --listen "127.0.0.1:$IS_PORT" --http-listen "127.0.0.1:$IS_HTTP" \
  --http-public-url "http://127.0.0.1:$IS_HTTP" --hostname localhost --hostname 127.0.0.1 \
  --test-http01-port "$H01" --test-tlsalpn01-port "$ALPN"
IS_PID=$BENCH_PID
bench_wait_for 30 "$IS_PID" curl -sf --cacert "$DATA/root.pem" "https://localhost:$IS_PORT/directory" \
  || { echo "bench-ocsp: ironseal did not start" >&2; tail -n 20 "$WORK/ironseal.log" >&2; exit 1; }
"$BENCH" issue --directory "https://localhost:$IS_PORT/directory" --ca-cert "$DATA/root.pem" \
  --http01-port "$H01" --count 3 --out "$WORK/is"
IS_URL=http://127.0.0.1:$IS_HTTP/ocsp
openssl ocsp -issuer "$WORK/is/inter.pem" -cert "$WORK/is/leaf0.pem" -no_nonce -reqout "$WORK/is/get.req" >/dev/null
IS_GET_URL="$IS_URL/$(b64url "$WORK/is/get.req")"
curl -sf -o "$WORK/is/get.resp" "$IS_GET_URL"
openssl ocsp -respin "$WORK/is/get.resp" -issuer "$WORK/is/inter.pem" -CAfile "$DATA/root.pem" \
  -cert "$WORK/is/leaf0.pem" -no_nonce 2>&1 | grep -q ': good' \
  || { echo "bench-ocsp: ironseal GET response does not verify" >&2; exit 1; }
for i in 0 1 2; do
  openssl ocsp -issuer "$WORK/is/inter.pem" -cert "$WORK/is/leaf$i.pem" -no_nonce -reqout "$WORK/is/plain$i.req" >/dev/null
done
for i in $(seq 0 63); do # distinct nonces
  openssl ocsp -issuer "$WORK/is/inter.pem" -cert "$WORK/is/leaf$((i % 3)).pem" -reqout "$WORK/is/nonce$i.req" >/dev/null
done

# ---------------------------------------------------------------------------
# openssl ocsp: a P-256 CA, a delegated responder, an index of 1,000 entries.
# ---------------------------------------------------------------------------
O=$WORK/openssl
mkdir "$O"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/ca.key" \
  -out "$O/ca.pem" -subj "/O=bench/CN=bench OpenSSL CA" -days 30 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$O/resp.key" \
  -out "$O/resp.csr" -subj "/O=bench/CN=bench OpenSSL CA OCSP Responder" 2>/dev/null
printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n' >"$O/resp.ext"
openssl x509 -req -in "$O/resp.csr" -CA "$O/ca.pem" -CAkey "$O/ca.key" -CAcreateserial \
  -days 30 -extfile "$O/resp.ext" -out "$O/resp.pem" 2>/dev/null
python3 - "$O/index.txt" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        serial = "%X" % (0x1000 + i)  # as openssl ca writes it: uppercase, even length
        if i % 10 == 9:
            f.write(f"R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN=host{i}.bench\n")
        else:
            f.write(f"V\t301231235959Z\t\t{serial}\tunknown\t/CN=host{i}.bench\n")
EOF
# One process, one connection at a time (its only mode without -multi). It is
# restarted before each run: after a run ends with connections still queued,
# OpenSSL 3.0's responder can stop answering.
OSSL_PID=
start_openssl() {
  [[ -n $OSSL_PID ]] && bench_stop "$OSSL_PID"
  openssl ocsp -index "$O/index.txt" -port "$OSSL_PORT" -rsigner "$O/resp.pem" -rkey "$O/resp.key" \
    -CA "$O/ca.pem" -nmin 60 -ignore_err -timeout 5 >>"$WORK/openssl-ocsp.log" 2>&1 &
  OSSL_PID=$!
  bench_cleanup_add "$OSSL_PID"
  bench_wait_for 10 "$OSSL_PID" openssl ocsp -issuer "$O/ca.pem" -serial 0x1000 -url "http://127.0.0.1:$OSSL_PORT" \
    -CAfile "$O/ca.pem" -timeout 2 \
    || { echo "bench-ocsp: openssl ocsp did not answer" >&2; cat "$WORK/openssl-ocsp.log" >&2; exit 1; }
}
start_openssl
for i in 0 1 2; do
  openssl ocsp -issuer "$O/ca.pem" -serial "$(printf '0x%X' $((0x1000 + i * 100)))" -no_nonce -reqout "$O/plain$i.req" >/dev/null
done
for i in $(seq 0 63); do
  openssl ocsp -issuer "$O/ca.pem" -serial "$(printf '0x%X' $((0x1000 + i)))" -reqout "$O/nonce$i.req" >/dev/null
done
for s in 0x1000:good 0x1009:revoked; do
  openssl ocsp -issuer "$O/ca.pem" -serial "${s%%:*}" -url "http://127.0.0.1:$OSSL_PORT" -CAfile "$O/ca.pem" \
    -verify_other "$O/resp.pem" 2>&1 | grep -q "${s%%:*}: ${s##*:}" \
    || { echo "bench-ocsp: openssl ocsp does not answer ${s##*:} for ${s%%:*}" >&2; exit 1; }
done

# ---------------------------------------------------------------------------
# Fixed-body server: ironseal's own pre-signed GET response, same bytes.
# ---------------------------------------------------------------------------
"$BENCH" fixed --listen "127.0.0.1:$FIXED_PORT" --file "$WORK/is/get.resp" >"$WORK/fixed.log" 2>&1 &
FIXED_PID=$!
bench_cleanup_add "$FIXED_PID"
bench_wait_for 10 "$FIXED_PID" curl -sf -o /dev/null "http://127.0.0.1:$FIXED_PORT/x"

# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------
RESULTS=$WORK/results.txt
: >"$RESULTS"
run() { # run NAME ARGS...
  local name=$1
  shift
  echo "--- $name"
  "$BENCH" load --name "$name" --seconds "$SECS" --connections "$C" --threads "$THREADS" \
    --max-requests "$MAX_REQUESTS" "$@" | tee -a "$RESULTS"
  sleep 1
}
nonce_is=() nonce_os=() plain_is=() plain_os=()
for i in $(seq 0 63); do nonce_is+=(--body "$WORK/is/nonce$i.req"); nonce_os+=(--body "$O/nonce$i.req"); done
for i in 0 1 2; do plain_is+=(--body "$WORK/is/plain$i.req"); plain_os+=(--body "$O/plain$i.req"); done

echo "bench-ocsp: $SECS s per run, $C connections, client threads $THREADS, $(nproc) CPUs"
run is_get_keepalive --url "$IS_GET_URL"
run fixed_get_keepalive --url "http://127.0.0.1:$FIXED_PORT/ocsp/x"
run is_post_newconn --url "$IS_URL" --new-connection "${plain_is[@]}"
start_openssl
run ossl_post_newconn --url "http://127.0.0.1:$OSSL_PORT/" --new-connection "${plain_os[@]}"
run is_nonce_newconn --url "$IS_URL" --new-connection "${nonce_is[@]}"
start_openssl
run ossl_nonce_newconn --url "http://127.0.0.1:$OSSL_PORT/" --new-connection "${nonce_os[@]}"
run is_nonce_keepalive --url "$IS_URL" "${nonce_is[@]}"

python3 - "$RESULTS" <<'EOF'
import sys
r = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        r[kv["name"]] = kv
def rps(n):
    v = float(r[n]["rps"]) if n in r else 0.0
    return v if v > 0 else float("nan")
def cell(n):
    if n not in r: return "n/a".rjust(28)
    x = r[n]
    err = int(x["bad"]) + int(x["errors"])
    return f'{float(x["rps"]):>9,.0f}/s p99 {float(x["p99_ms"]):>6.2f} ms{(" ERR%d" % err) if err else ""}'.rjust(28)
print()
print(f'{"":44}{"ironseal":>28}{"comparison":>28}')
rows = [
    ("(i) cached GET, keep-alive", "is_get_keepalive", "fixed_get_keepalive", "fixed-body server"),
    ("(ii) POST, new connection, no nonce", "is_post_newconn", "ossl_post_newconn", "openssl ocsp"),
    ("(ii) POST, new connection, nonce", "is_nonce_newconn", "ossl_nonce_newconn", "openssl ocsp"),
    ("(iii) POST, keep-alive, nonce (live)", "is_nonce_keepalive", None, ""),
]
for label, a, b, what in rows:
    print(f"{label:44}{cell(a)}{cell(b) if b else 'n/a'.rjust(28)}  {what}")
print()
get, fixed = rps("is_get_keepalive"), rps("fixed_get_keepalive")
print(f"target cached GET >= 20,000/s: {get:,.0f}/s -> {'met' if get >= 20000 else 'MISSED'}")
print(f"target cached GET >= 1/2 fixed-body: {get / fixed:.2f} x -> {'met' if get >= fixed / 2 else 'MISSED'}")
for a, b in [("is_post_newconn", "ossl_post_newconn"), ("is_nonce_newconn", "ossl_nonce_newconn")]:
    print(f"target new-connection {a} >= {b}: {rps(a) / rps(b):.2f} x -> {'met' if rps(a) >= rps(b) else 'MISSED'}")
EOF
