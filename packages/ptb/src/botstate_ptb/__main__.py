"""``python -m botstate_ptb import-pickle FILE STORAGE``: a PicklePersistence file into botstate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from botstate.errors import BotstateError

from .migrate import import_pickle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m botstate_ptb",
        description="Tools for python-telegram-bot data in botstate.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser(
        "import-pickle",
        help="import a PicklePersistence file into a botstate storage",
        description="Copy the user/chat/bot data, callback data and conversation states of a "
        "PicklePersistence file into a storage, under the keys BotstatePersistence reads. "
        "Unpickling runs code: import only your own files.",
    )
    imp.add_argument("file", help="the filepath given to PicklePersistence")
    imp.add_argument("storage", help="storage URL, e.g. sqlite:///bot.db or redis://host:6379/0")
    imp.add_argument(
        "--multi-file",
        action="store_true",
        help="the bot used PicklePersistence(single_file=False): FILE is the prefix of its files",
    )
    imp.add_argument("--prefix", default="ptb", help="key prefix, as BotstatePersistence's prefix")
    imp.add_argument("--namespace", default=None, help="botstate namespace of the storage")
    imp.add_argument(
        "--replace",
        action="store_true",
        help="import even if the storage already holds data under the prefix",
    )
    args = parser.parse_args(argv)
    spec = {"url": args.storage}
    if args.namespace is not None:
        spec["namespace"] = args.namespace
    try:
        report = asyncio.run(
            import_pickle(
                args.file,
                spec,
                single_file=not args.multi_file,
                prefix=args.prefix,
                replace=args.replace,
            )
        )
    except BotstateError as err:
        print(f"botstate-ptb: {err}", file=sys.stderr)
        return 1
    print(f"imported {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
