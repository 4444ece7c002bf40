# shellcheck shell=bash
# Shared set-up of the benchmark scripts (scripts/bench-*.sh): sourced, not
# run. Each script keeps its own `set -euo pipefail`, arguments, header and
# output; this file only holds the pieces they had written out alike.
#
#   . "$(dirname "$0")/bench-lib.sh"
#   bench_init bench-est        # ROOT, TARGET, IRONSEAL; messages say "bench-est: ..."
#   bench_need_tools openssl curl python3
#   bench_build -p ironseal -p ironseal-conformance   # unless SKIP_BUILD=1
#   bench_work_dir              # WORK
#   bench_cleanup_on_exit       # on exit: stop tracked processes, remove WORK unless KEEP=1 or failed
#   read -r PORT HTTP <<<"$(bench_free_ports 2)"
#   bench_start_ironseal "$WORK/ironseal.log" "$ADMIN_KEY" --data-dir ... ; IS_PID=$BENCH_PID
#   bench_wait_https "https://localhost:$PORT/directory" "$DATA/root.pem" 30 "$IS_PID"
#
# Globals it sets: BENCH_NAME, ROOT, TARGET, IRONSEAL, WORK, BENCH_PID (the
# last process started here), BENCH_PIDS (processes stopped on exit),
# BENCH_AT_EXIT (commands run on exit); a script may set BENCH_KEEP_NOTE.

# bench_init NAME: the message prefix NAME and the paths every script uses:
# ROOT (the repository), TARGET ($CARGO_TARGET_DIR, default <repo>/target) and
# IRONSEAL (the server binary: $IRONSEAL, default $TARGET/release/ironseal).
bench_init() {
  BENCH_NAME=$1
  ROOT=$(cd "$(dirname "$0")/.." && pwd)
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  IRONSEAL=${IRONSEAL:-$TARGET/release/ironseal}
  BENCH_PIDS=()
  BENCH_AT_EXIT=()
  BENCH_KEEP_NOTE=
}

# bench_need_tools [--hint] TOOL...: exits 2 naming the first TOOL not on PATH;
# --hint adds "(see scripts/install-test-deps.sh)" to the message.
bench_need_tools() {
  local hint="" tool
  if [[ ${1:-} == --hint ]]; then hint=" (see scripts/install-test-deps.sh)"; shift; fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$BENCH_NAME: missing $tool$hint" >&2; exit 2; }
  done
}

# bench_want_build: true unless SKIP_BUILD=1.
bench_want_build() { [[ "${SKIP_BUILD:-0}" != 1 ]]; }

# bench_cargo_build ARGS...: `cargo build --release ARGS` in ROOT into TARGET.
bench_cargo_build() { (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release "$@"); }

# bench_build ARGS...: unless SKIP_BUILD=1, says what it builds and runs
# bench_cargo_build ARGS; its status is cargo's.
bench_build() {
  bench_want_build || return 0
  echo "$BENCH_NAME: cargo build --release $* (CARGO_TARGET_DIR=$TARGET)"
  bench_cargo_build "$@"
}

# bench_need_bins BIN...: exits 2 unless every BIN is executable ("A or B missing").
bench_need_bins() {
  local b all
  for b in "$@"; do
    [[ -x $b ]] && continue
    all=$(printf ' or %s' "$@")
    echo "$BENCH_NAME: ${all# or } missing" >&2
    exit 2
  done
}

# bench_work_dir: a fresh work directory in WORK (NAME.XXXXXX under $TMPDIR).
bench_work_dir() { WORK=$(mktemp -d -t "$BENCH_NAME.XXXXXX"); }

# bench_cleanup_add PID: stop PID (SIGTERM, then wait) when the script exits.
bench_cleanup_add() { BENCH_PIDS+=("$1"); }

# bench_at_exit CMD: run CMD (a command or function name, no arguments) on
# exit, after the tracked processes are stopped and before WORK is removed.
bench_at_exit() { BENCH_AT_EXIT+=("$1"); }

# bench_stop PID: stop one process started here now (SIGTERM: ironseal flushes
# and exits), wait for it, and stop tracking it.
bench_stop() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]+"${keep[@]}"}")
}

# bench_stop_all: SIGTERM to every tracked process, then wait for each.
bench_stop_all() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BENCH_PIDS=()
}

# bench_cleanup: the EXIT trap of bench_cleanup_on_exit. Stops the tracked
# processes, runs the bench_at_exit commands, then removes WORK unless KEEP=1
# or the script failed; then it says "work dir BENCH_KEEP_NOTE kept in WORK"
# (BENCH_KEEP_NOTE, e.g. "(logs, configs)", empty unless the script sets it).
bench_cleanup() {
  local rc=$? cmd
  bench_stop_all
  for cmd in "${BENCH_AT_EXIT[@]}"; do "$cmd" || true; done
  if [[ "${KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    echo "$BENCH_NAME: work dir${BENCH_KEEP_NOTE:+ $BENCH_KEEP_NOTE} kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}

# bench_cleanup_on_exit: bench_cleanup on exit (Ctrl-C and SIGTERM exit 130
# through it).
bench_cleanup_on_exit() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_free_ports N [R]: N distinct free loopback TCP ports (held open
# together so they differ); with R, the first is also free on 127.0.0.2 to
# 127.0.0.(R+1) (for R replicas on one port, one address each).
bench_free_ports() {
  python3 - "$1" "${2:-0}" <<'EOF'
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

# bench_start_ironseal LOG ADMIN_KEY SERVE_ARGS...: `ironseal serve SERVE_ARGS
# --log-format json` in the background, output to LOG, tracked for cleanup;
# its PID in BENCH_PID. ADMIN_KEY ("" for none) is IRONSEAL_INITIAL_ADMIN_KEY.
bench_start_ironseal() {
  local log=$1 key=$2
  shift 2
  if [[ -n $key ]]; then
    IRONSEAL_INITIAL_ADMIN_KEY=$key "$IRONSEAL" serve "$@" --log-format json >"$log" 2>&1 &
  else
    "$IRONSEAL" serve "$@" --log-format json >"$log" 2>&1 &
  fi
  BENCH_PID=$!
  bench_cleanup_add "$BENCH_PID"
}

# bench_start_challtestsrv DNS_PORT MGMT_PORT: pebble-challtestsrv as fake
# DNS only (every A query -> 127.0.0.1, no AAAA, no challenge servers), log
# in $WORK/challtestsrv.log, tracked; waits up to 10 s for its management
# port (exits 1 with its log if it dies). Its PID in BENCH_PID.
bench_start_challtestsrv() {
  local dns=$1 mgmt=$2 i
  pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$mgmt" >"$WORK/challtestsrv.log" 2>&1 &
  BENCH_PID=$!
  bench_cleanup_add "$BENCH_PID"
  for ((i = 0; i < 100; i++)); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$mgmt/" && break
    kill -0 "$BENCH_PID" 2>/dev/null || { cat "$WORK/challtestsrv.log" >&2; exit 1; }
    sleep 0.1
  done
}

# bench_wait_for SECONDS "PID..." CMD...: runs CMD (output discarded) every
# 0.1 s until it succeeds (0); 1 as soon as one of the PIDs has exited, 2
# after SECONDS.
bench_wait_for() {
  local secs=$1 pids=$2 i p
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    for p in $pids; do kill -0 "$p" 2>/dev/null || return 1; done
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 2
}

# bench_https_ok URL CAFILE: URL answers 200 over TLS trusted by CAFILE (a
# CAFILE not written yet is a no).
bench_https_ok() {
  [[ -s $2 ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$2" "$1" || true) == 200 ]]
}

# bench_wait_https URL CAFILE SECONDS PID...: bench_wait_for bench_https_ok
# (status 1: a PID exited; 2: not ready after SECONDS).
bench_wait_https() {
  local url=$1 ca=$2 secs=$3
  shift 3
  bench_wait_for "$secs" "$*" bench_https_ok "$url" "$ca"
}

# bench_load_avg: the 1, 5 and 15 minute load averages ("2.10 1.95 1.40").
bench_load_avg() { cut -d" " -f1-3 /proc/loadavg; }

# --- bench_acme runs (bench-acme.sh, bench-scale-out.sh): they use BENCH (the
# driver), N orders, C clients, MAX_SECONDS and STALL_SECONDS of the script.

# bench_acme_run LABEL DIRECTORY CAFILE HTTP01_PORT SERVER_PIDS [DB_PID]: one
# bench_acme run; prints its output, keeps it in $WORK/LABEL.out and its JSON
# line in $WORK/LABEL.json. SERVER_PIDS: one PID or a comma-separated list.
bench_acme_run() {
  local label=$1 dir=$2 ca=$3 port=$4 pids=$5 db=${6:-} rc=0
  local extra=()
  [[ -n $db ]] && extra=(--db-pid "$db")
  "$BENCH" --label "$label" --directory "$dir" --ca-cert "$ca" --orders "$N" --concurrency "$C" \
    --http01-port "$port" --server-pid "$pids" "${extra[@]+"${extra[@]}"}" --max-seconds "$MAX_SECONDS" \
    --stall-seconds "$STALL_SECONDS" >"$WORK/$label.out" 2>&1 || rc=$?
  cat "$WORK/$label.out"
  grep '^{"bench":"acme"' "$WORK/$label.out" | tail -n 1 >"$WORK/$label.json" || true
  [[ $rc == 0 ]] || echo "$BENCH_NAME: bench_acme for $label exited with $rc" >&2
  echo
}

# bench_acme_field LABEL JQ_EXPR: the value from LABEL's JSON ("n/a" when
# null, "-" when the run left no JSON).
bench_acme_field() {
  local f=$WORK/$1.json
  if [[ -s $f ]]; then jq -r "$2 // \"n/a\"" "$f"; else echo "-"; fi
}

# bench_acme_num LABEL KEY DECIMALS: bench_acme_field LABEL .KEY, a number
# printed with DECIMALS places, anything else as it is.
bench_acme_num() {
  local v
  v=$(bench_acme_field "$1" ".$2")
  if [[ $v =~ ^-?[0-9.]+(e-?[0-9]+)?$ ]]; then printf "%.${3}f" "$v"; else printf "%s" "$v"; fi
}
