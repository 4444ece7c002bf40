#!/bin/sh
# certbot --manual-cleanup-hook for dns-01: remove the TXT records again.
set -eu
: "${IRONSEAL_CHALLTESTSRV_URL:?IRONSEAL_CHALLTESTSRV_URL not set}"
: "${CERTBOT_DOMAIN:?}"
exec curl -sS --fail --max-time 10 -X POST \
  -d "{\"host\":\"_acme-challenge.${CERTBOT_DOMAIN}.\"}" \
  "${IRONSEAL_CHALLTESTSRV_URL}/clear-txt"
