#!/usr/bin/env bash
# Abuse run against the release build (issue 10): floods and hostile
# requests on loopback, bounded in count and time, while certbot and
# openssl ocsp must keep working. Prints peak RSS, open descriptors, flood
# rates and probe latencies (recorded in docs/security.md, "Abuse run").
#
#   scripts/abuse.sh            # defaults: 10,000 idle connections, 60 s of floods
#
# Environment: IRONSEAL (binary, default target/release/ironseal), IDLE,
# NONCES, ADMIN, OCSP, OCSP_NONCE, FLOOD_SECS, IRONSEAL_VENV (the venv with
# certbot and cryptography; default .venv, made by scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${IRONSEAL_VENV:-$PWD/.venv}
export IRONSEAL=${IRONSEAL:-$PWD/target/release/ironseal}
[ -x "$IRONSEAL" ] || { echo "abuse: build first: cargo build --release -p ironseal" >&2; exit 2; }
export PATH="$venv/bin:$PATH"
exec "$venv/bin/python" scripts/abuse.py
