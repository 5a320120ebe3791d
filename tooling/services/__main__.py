"""``python -m tooling.services start NAME``: run a test service by hand until Ctrl-C.

Prints the storage URL to use (``redis://...``, ``dynamodb://botstate?...``), then
waits; Ctrl-C stops the service and removes its temporary directory. Add a
service with a starter function and one line in ``STARTERS``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from . import ServiceError
from .dynamodb import start_dynamodb_local
from .redis import start_redis, start_redis_cluster


class Service(Protocol):
    def stop(self) -> None: ...


def _redis(tmp: Path) -> tuple[Service, str]:
    server = start_redis(tmp)
    return server, server.url


def _redis_cluster(tmp: Path) -> tuple[Service, str]:
    cluster = start_redis_cluster(tmp)
    return cluster, cluster.url


def _dynamodb(tmp: Path) -> tuple[Service, str]:
    server = start_dynamodb_local(tmp)
    return server, server.url("botstate")  # the adapter creates the table on first use


# name -> function(tmpdir) that starts the service and returns it with the storage URL to print
STARTERS: dict[str, Callable[[Path], tuple[Service, str]]] = {
    "redis": _redis,
    "redis-cluster": _redis_cluster,
    "dynamodb": _dynamodb,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.services", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a service and wait for Ctrl-C")
    start.add_argument("name", choices=sorted(STARTERS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=f"botstate-{args.name}-") as tmp:
        try:
            service, url = STARTERS[args.name](Path(tmp))
        except ServiceError as err:
            print(f"cannot start {args.name}: {err}", file=sys.stderr)
            return 1
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
