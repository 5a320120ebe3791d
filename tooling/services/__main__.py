"""``python -m tooling.services start NAME``: run a test service by hand until Ctrl-C.

Prints the URL to use, then waits; Ctrl-C stops the service and removes its
temporary directory. Add a service with one line in ``STARTERS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import ServiceError

# name -> "module:function"; the function takes a tmpdir and returns an object with .url and .stop()
STARTERS: dict[str, str] = {
    "redis": "tooling.services.redis:start_redis",
    "redis-cluster": "tooling.services.redis:start_redis_cluster",
    "dynamodb": "tooling.services.dynamodb:start_dynamodb_local",
}


def _load(spec: str) -> Callable[[Path], Any]:
    module, _, attr = spec.partition(":")
    starter: Callable[[Path], Any] = getattr(importlib.import_module(module), attr)
    return starter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.services", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a service and wait for Ctrl-C")
    start.add_argument("name", choices=sorted(STARTERS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=f"botstate-{args.name}-") as tmp:
        try:
            service = _load(STARTERS[args.name])(Path(tmp))
        except ServiceError as err:
            print(f"cannot start {args.name}: {err}", file=sys.stderr)
            return 1
        url = getattr(service, "endpoint_url", None) or getattr(service, "url", None)
        print(url, flush=True)
        print("running; press Ctrl-C to stop", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
