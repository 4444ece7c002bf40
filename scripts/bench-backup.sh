#!/usr/bin/env bash
# Backup benchmark: how long `ironseal backup` (online) and `ironseal
# restore` take on a store of N certificates, the size of the file, and how
# long a write waits while the snapshot is taken (an admin call that writes
# an audit entry, timed during the backup). A command that prints figures,
# not a test; docs/benchmarks.md ("Backup") records them.
#
#   scripts/bench-backup.sh [N]        default 100000
#
# Environment: CARGO_TARGET_DIR, SKIP_BUILD=1, KEEP=1 (as in
# scripts/bench-scale.sh); WORK_DIR: the work dir itself (unlike
# bench-scale.sh, not a parent of one), removed at the end unless KEEP=1.
set -euo pipefail
# shellcheck source=bench-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/bench-lib.sh"
bench_init bench-backup
cd "$ROOT"
N=${1:-100000}
IRONSEAL=$TARGET/release/ironseal # not overridden by $IRONSEAL here
SEED=$TARGET/release/examples/seed_store
if bench_want_build; then
  bench_cargo_build -q -p ironseal
  bench_cargo_build -q -p ironseal-storage --example seed_store
fi
WORK=${WORK_DIR:-$(mktemp -d -t bench-backup.XXXXXX)}
trap 'bench_stop_all; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT
DATA=$WORK/data
read -r PORT HTTP_PORT <<<"$(bench_free_ports 2)"
KEY=isk_bench_backup_key_0123456789
start() {
  bench_start_ironseal "$WORK/server.log" "$KEY" --data-dir "$1" --listen "127.0.0.1:$PORT" \
    --http-listen "127.0.0.1:$HTTP_PORT"
  PID=$BENCH_PID
  bench_wait_for 600 "$PID" curl -sf "http://127.0.0.1:$HTTP_PORT/health" \
    || { echo "bench-backup: ironseal did not start" >&2; tail -n 20 "$WORK/server.log" >&2; exit 1; }
}
stop() { bench_stop "$PID"; PID=; }
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
