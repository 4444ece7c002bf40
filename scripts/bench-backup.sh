#!/usr/bin/env bash
# Backup benchmark: how long `ironseal backup` (online) and `ironseal
# restore` take on a store of N certificates, the size of the file, and how
# long a write waits while the snapshot is taken (an admin call that writes
# an audit entry, timed during the backup). A command that prints figures,
# not a test; docs/benchmarks.md ("Backup") records them.
#
#   scripts/bench-backup.sh [N]        default 100000
#
# Environment: CARGO_TARGET_DIR, SKIP_BUILD=1, WORK_DIR, KEEP=1 (as in
# scripts/bench-scale.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
IRONSEAL=$TARGET/release/ironseal
SEED=$TARGET/release/examples/seed_store
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p ironseal
  cargo build --release -q -p ironseal-storage --example seed_store
fi
WORK=${WORK_DIR:-$(mktemp -d -t bench-backup.XXXXXX)}
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true' EXIT
DATA=$WORK/data
PORT=$((20000 + RANDOM % 20000)); HTTP_PORT=$((PORT + 1))
KEY=isk_bench_backup_key_0123456789
start() {
  IRONSEAL_INITIAL_ADMIN_KEY=$KEY "$IRONSEAL" serve --data-dir "$1" --listen 127.0.0.1:$PORT \
    --http-listen 127.0.0.1:$HTTP_PORT --log-format json >"$WORK/server.log" 2>&1 &
  PID=$!
  until curl -sf "http://127.0.0.1:$HTTP_PORT/health" >/dev/null; do sleep 0.2; done
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
export IRONSEAL_URL=https://localhost:$PORT IRONSEAL_API_KEY=$KEY IRONSEAL_CA_CERT=$DATA/root.pem

start "$DATA"; stop
"$SEED" --data-dir "$DATA" --certs "$N" >/dev/null
start "$DATA"
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# A write during the backup: creating an API key writes the key and an
# audit entry, so it waits for the gate.
( sleep 0.3; s=$(date +%s.%N); "$IRONSEAL" admin keys create --name probe --role auditor >/dev/null
  e=$(date +%s.%N); echo "$s $e" >"$WORK/probe" ) &
PROBE=$!
t0=$(date +%s.%N); c0=$(cpu_ticks)
out=$("$IRONSEAL" backup)
t1=$(date +%s.%N); c1=$(cpu_ticks)
wait "$PROBE"
file=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
entries=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
bytes=$(stat -c %s "$file")
rss=$(rss_kb)
stop
t2=$(date +%s.%N)
"$IRONSEAL" restore --from "$file" --data-dir "$WORK/restored" --log-format json >/dev/null
t3=$(date +%s.%N)
read -r ps pe <"$WORK/probe"
hz=$(getconf CLK_TCK)
python3 - "$N" "$entries" "$bytes" "$t0" "$t1" "$t2" "$t3" "$ps" "$pe" "$c0" "$c1" "$hz" "$rss" <<'EOF'
import sys
n, entries, size = map(int, sys.argv[1:4])
t0, t1, t2, t3, ps, pe = map(float, sys.argv[4:10])
c0, c1, hz, rss = int(sys.argv[10]), int(sys.argv[11]), int(sys.argv[12]), int(sys.argv[13])
print(f"certificates          {n}")
print(f"backup entries        {entries}")
print(f"backup file           {size/1e6:.1f} MB")
print(f"backup (online)       {t1-t0:.2f} s wall, {(c1-c0)/hz:.2f} s server CPU, {entries/(t1-t0):.0f} entries/s")
print(f"write during backup   {pe-ps:.2f} s (an API key create, started 0.3 s in)")
print(f"server RSS after      {rss/1024:.0f} MB")
print(f"restore (offline)     {t3-t2:.2f} s wall, {entries/(t3-t2):.0f} entries/s")
EOF
