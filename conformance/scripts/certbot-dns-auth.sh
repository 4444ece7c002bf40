#!/bin/sh
# certbot --manual-auth-hook for dns-01: publish the TXT record in
# pebble-challtestsrv through its management API.
# Env from certbot: CERTBOT_DOMAIN (wildcards arrive without "*."), CERTBOT_VALIDATION.
# Env from the harness: IRONSEAL_CHALLTESTSRV_URL (e.g. http://127.0.0.1:PORT).
set -eu
: "${IRONSEAL_CHALLTESTSRV_URL:?IRONSEAL_CHALLTESTSRV_URL not set}"
: "${CERTBOT_DOMAIN:?}"
: "${CERTBOT_VALIDATION:?}"
exec curl -sS --fail --max-time 10 -X POST \
  -d "{\"host\":\"_acme-challenge.${CERTBOT_DOMAIN}.\",\"value\":\"${CERTBOT_VALIDATION}\"}" \
  "${IRONSEAL_CHALLTESTSRV_URL}/set-txt"
