#!/usr/bin/env bash
# The one command that runs every test. It installs what the tests need
# (idempotently), checks formatting and lints, runs the unit and storage
# batteries, the black-box conformance suite against the release binary with
# real clients (certbot, lego, openssl, pkilint), and smoke-runs every fuzz
# target. Exit status is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "installing test dependencies"
bash scripts/install-test-deps.sh
export IRONSEAL_VENV="${IRONSEAL_VENV:-$PWD/.venv}"

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "building the release binary"
cargo build --release --locked -p ironseal
export IRONSEAL_BIN="$PWD/target/release/ironseal"

step "starting a throwaway PostgreSQL cluster"
# The PostgreSQL storage battery and conformance tests use it; stopped and
# removed on exit, whatever happens.
pg_dir=$(bash scripts/pg-throwaway.sh start)
test_log=$(mktemp)
trap 'rm -f "$test_log"; bash scripts/pg-throwaway.sh stop "$pg_dir"' EXIT
IRONSEAL_TEST_PG_URL=$(bash scripts/pg-throwaway.sh url "$pg_dir")
export IRONSEAL_TEST_PG_URL

step "unit, storage and conformance tests"
set +e
cargo test --workspace --locked --no-fail-fast -- --test-threads="${IRONSEAL_TEST_THREADS:-2}" 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
# Totals over every test binary (cargo prints one "test result" line each).
passed=$(grep -E '^test result:' "$test_log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result:' "$test_log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
if [ "$test_status" -ne 0 ]; then
  echo "tests: ${passed:-0} passed, ${failed:-?} failed"
  exit "$test_status"
fi

step "fuzz smoke run"
bash scripts/fuzz-smoke.sh

step "all tests passed in $(( $(date +%s) - start ))s"
echo "tests: ${passed} passed, ${failed} failed"
