#!/usr/bin/env bash
# Install the system programs sealgate needs, where missing (Debian/Ubuntu).
set -euo pipefail
missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# GnuTLS's certtool parses sealed proofs in the tests (tests/crypto/test_attributes.py)
command -v certtool >/dev/null 2>&1 || missing+=(gnutls-bin)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # the capacity harness's load generator
# nginx in front of several gateways (tests/gateway/test_nginx.py, deploy/nginx/)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing+=(nginx-light)
# The test suite starts its own PostgreSQL (initdb + postgres) for the city-scale registry.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
