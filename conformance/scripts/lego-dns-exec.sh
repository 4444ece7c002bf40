#!/bin/sh
# lego `--dns exec` provider script (EXEC_PATH), default (non-RAW) mode:
#   $1 = present|cleanup, $2 = FQDN ("_acme-challenge.name."), $3 = TXT value.
# Env from the harness: IRONSEAL_CHALLTESTSRV_URL.
set -eu
: "${IRONSEAL_CHALLTESTSRV_URL:?IRONSEAL_CHALLTESTSRV_URL not set}"
case "${1:-}" in
  present)
    exec curl -sS --fail --max-time 10 -X POST \
      -d "{\"host\":\"$2\",\"value\":\"$3\"}" "${IRONSEAL_CHALLTESTSRV_URL}/set-txt" ;;
  cleanup)
    exec curl -sS --fail --max-time 10 -X POST \
      -d "{\"host\":\"$2\"}" "${IRONSEAL_CHALLTESTSRV_URL}/clear-txt" ;;
  *) exit 0 ;;
esac
