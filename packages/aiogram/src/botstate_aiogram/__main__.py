"""``python -m botstate_aiogram import-redis SOURCE TARGET``: move an aiogram RedisStorage.

Copies the FSM states and data an aiogram ``RedisStorage`` keeps in Redis at
``SOURCE`` into the botstate storage at ``TARGET`` (any botstate URL), where
``BotstateStorage`` finds them under the same key names. Exit codes: 0 done,
2 usage or configuration error, 3 a storage could not be reached, 1 any
other failure. Passwords in URLs are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from botstate.errors import BotstateError, ConfigError, StorageUnavailable
from botstate.opening import open_storage
from botstate.urls import redact_secrets

from .migrate import import_redis_storage

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m botstate_aiogram", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import-redis",
        help="copy an aiogram RedisStorage keyspace into a botstate storage",
        description="Copy the FSM states and data of an aiogram RedisStorage into a botstate "
        "storage, keeping key names and remaining TTLs; isolation locks are skipped.",
    )
    imp.add_argument("source", help="the Redis URL aiogram's RedisStorage used")
    imp.add_argument("target", help="botstate storage URL, e.g. sqlite:///bot.db")
    imp.add_argument("--namespace", help="botstate namespace the bot's Storage will use")
    imp.add_argument("--prefix", default="fsm", help="the key builder's prefix (default: fsm)")
    imp.add_argument("--separator", default=":", help="the key builder's separator (default: :)")
    imp.add_argument("--dry-run", action="store_true", help="count, write nothing")
    return parser


async def _import(args: argparse.Namespace) -> int:
    async with open_storage(args.target, namespace=args.namespace) as target:
        report = await import_redis_storage(
            args.source,
            target,
            prefix=args.prefix,
            separator=args.separator,
            dry_run=args.dry_run,
        )
    verb = "would copy" if args.dry_run else "copied"
    print(
        f"{verb} {report.states} states and {report.data} data entries; "
        f"skipped {report.locks} locks, {len(report.skipped)} other keys, "
        f"{report.expired} expired meanwhile"
    )
    for key in report.skipped[:20]:
        print(f"  not FSM state/data: {key}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_import(args))
    except BotstateError as err:
        message = redact_secrets(str(err), url=args.source)
        message = redact_secrets(message, url=args.target)
        print(f"error: {type(err).__name__}: {message}", file=sys.stderr)
        if isinstance(err, StorageUnavailable):
            return 3
        return 2 if isinstance(err, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
