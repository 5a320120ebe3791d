#!/usr/bin/env bash
# From a fresh clone to green tests, in one command (what .ci/run runs first):
#
#   bash tooling/ci.sh                 # everything below
#   bash tooling/ci.sh tests/core -x   # the same, passing arguments to pytest
#
# 1. hatch, in its own virtual environment (tooling/hatch.sh);
# 2. the servers the tests start: redis-server, openssl, Java and DynamoDB Local
#    (tooling/install-services.sh: installs them as root; otherwise says which one
#    is missing and how to get it; the tests needing it are then skipped, and
#    under CI=true this stops here);
# 3. `hatch run test` (the whole suite, real servers on loopback ports),
#    `hatch run lint` (ruff, mypy --strict) and `hatch run docs:build` (strict).
set -euo pipefail
cd "$(dirname "$0")/.."

PATH="$(bash tooling/hatch.sh --bin-dir):$PATH"
export PATH

if ! bash tooling/install-services.sh; then
  if [ "${CI:-}" = "true" ]; then
    echo "tooling/ci.sh: CI=true and servers are missing (above): stopping" >&2
    exit 1
  fi
  echo "tooling/ci.sh: going on without them; their tests will be skipped" >&2
fi

hatch run test "$@"
hatch run lint
hatch run docs:build
