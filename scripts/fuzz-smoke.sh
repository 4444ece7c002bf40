#!/usr/bin/env bash
# Smoke-run every cargo-fuzz target for a short time (house habit 7).
#
#   scripts/fuzz-smoke.sh                 # all targets, 20 s each
#   FUZZ_SECONDS=10 scripts/fuzz-smoke.sh jws_parse
#
# Toolchain: this machine has only STABLE Rust. cargo-fuzz needs nightly-only
# rustc flags (-Zsanitizer=address, and cargo-fuzz's sancov setup), so we set
# RUSTC_BOOTSTRAP=1, which lets stable rustc accept them. Verified here with
# Rust 1.95 + cargo-fuzz 0.13: AddressSanitizer (cargo-fuzz's default) builds
# and runs. If a toolchain ever rejects ASan, run with FUZZ_SANITIZER=none
# (coverage-guided fuzzing without ASan; Rust code is memory safe anyway,
# the sanitizer mainly covers aws-lc's C code, which is not instrumented by
# RUSTFLAGS in any case).
#
# Inputs: fuzz/seeds/<target>/ (committed, seeded from protocol/tests/vectors
# and openssl-made CSRs) is read-only; new inputs go to fuzz/corpus/<target>/
# (gitignored). Crashes land in fuzz/artifacts/<target>/ and fail the script.
set -euo pipefail

cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing; installing" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Build every target in one cargo invocation first: the shared
# dependencies (protocol, ca-core, aws-lc with ASan) compile once and the
# target binaries compile and link in parallel; `cargo fuzz run` below
# then finds them up to date.
if [ "$#" -gt 0 ]; then
    for t in "${targets[@]}"; do
        cargo fuzz build --sanitizer "$sanitizer" "$t"
    done
else
    cargo fuzz build --sanitizer "$sanitizer"
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    seeds=()
    if [ -d "fuzz/seeds/$t" ]; then
        seeds=("fuzz/seeds/$t")
    fi
    echo "=== $t: ${seconds}s, sanitizer=$sanitizer" >&2
    log="$(mktemp)"
    if cargo fuzz run --sanitizer "$sanitizer" "$t" "fuzz/corpus/$t" "${seeds[@]}" \
        -- -max_total_time="$seconds" >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/$t: /" || true
    else
        tail -n 40 "$log" >&2
        failed+=("$t")
    fi
    rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke OK: ${targets[*]}"
