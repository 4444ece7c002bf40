#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: Debian packages for the
# real peers (pebble + pebble-challtestsrv, lego, openssl), the deployment
# checkers (promtool from `prometheus`, systemd-analyze from `systemd`), HAProxy
# (the scale-out test's load balancer) and a
# Python venv with certbot, pkilint and kubernetes-validate. Safe to run
# repeatedly; skips what is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${IRONSEAL_VENV:-$here/.venv}"

need_apt=()
command -v pebble-challtestsrv >/dev/null 2>&1 || need_apt+=(pebble)
command -v lego >/dev/null 2>&1 || need_apt+=(lego)
# Debian's certbot: the README quick start uses it, and its test runs the
# README verbatim (the conformance suite uses the venv's newer certbot).
command -v certbot >/dev/null 2>&1 || need_apt+=(certbot)
# micromdm's scepclient (and scepserver) for the SCEP conformance tests.
command -v scepclient >/dev/null 2>&1 || need_apt+=(scep)
# certmonger (getcert + its scep-submit helper) for the SCEP conformance
# test; the test runs the daemon itself on a private D-Bus session bus.
[ -x /usr/lib/certmonger/scep-submit ] || need_apt+=(certmonger)
command -v dbus-run-session >/dev/null 2>&1 || need_apt+=(dbus-daemon)
# strongSwan's `pki --est` / `pki --estca` for the EST conformance tests.
# Its https fetcher is the curl plugin, packaged in the extra plugins.
command -v pki >/dev/null 2>&1 || need_apt+=(strongswan-pki)
dpkg -s libstrongswan-extra-plugins >/dev/null 2>&1 || need_apt+=(libstrongswan-extra-plugins)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# HAProxy in front of three replicas for the scale-out test and benchmark.
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/certbot" ] || [ ! -x "$venv/bin/lint_pkix_cert" ]; then
  echo "install-test-deps: creating Python venv at $venv (certbot, pkilint)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q certbot pkilint
fi
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "install-test-deps: adding kubernetes-validate to $venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi
echo "install-test-deps: ok (pebble-challtestsrv: $(command -v pebble-challtestsrv), lego: $(command -v lego), scepclient: $(command -v scepclient), getcert: $(command -v getcert), pki: $(command -v pki), promtool: $(command -v promtool), systemd-analyze: $(command -v systemd-analyze), haproxy: $(command -v haproxy), venv: $venv)"
