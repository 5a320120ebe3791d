#!/usr/bin/env bash
# Runs hatch (`bash tooling/hatch.sh run demo`), installing it first when needed into
# its own virtual environment ($BOTSTATE_CI_TOOLS, default ~/.cache/botstate-ci): a
# system Python may refuse `pip install` outright (PEP 668, "externally managed").
# `bash tooling/hatch.sh --bin-dir` prints the directory holding hatch, for PATH.
set -euo pipefail
tools="${BOTSTATE_CI_TOOLS:-$HOME/.cache/botstate-ci}"

fail() {
  echo "tooling/hatch.sh: $*" >&2
  exit 1
}

if [ ! -x "$tools/bin/hatch" ]; then
  command -v python3 >/dev/null ||
    fail "python3 not found: install Python 3.10 or newer (as root: apt-get install python3)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    fail "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); botstate needs Python 3.10 or newer"
  if ! python3 -m venv "$tools" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing python3-venv" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$tools"
    else
      fail "python3 -m venv does not work here: install the venv module (as root: apt-get install python3-venv)"
    fi
  fi
  echo "installing hatch into $tools" >&2
  "$tools/bin/pip" install --quiet --disable-pip-version-check "hatch>=1.16" ||
    fail "pip could not install hatch into $tools (see above)"
fi

if [ "${1:-}" = "--bin-dir" ]; then
  echo "$tools/bin"
  exit 0
fi
# On PATH for scripts that run hatch again (`hatch run docs` runs `hatch run docs:serve`).
PATH="$tools/bin:$PATH" exec "$tools/bin/hatch" "$@"
