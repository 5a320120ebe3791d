"""``botstate``: inspect, edit, check and copy storages from the command line.

    $ botstate adapters
    $ botstate set sqlite:///bot.db chat:1 '{"step": "ask_name"}' --ttl 3600
    $ botstate copy sqlite:///bot.db redis://localhost:6379/0

Stdlib only; with ``pip install "botstate[cli]"`` tables and the copy progress
bar use ``rich``. Errors are one line on stderr (no traceback unless
``--debug``) with secrets of the given URLs hidden, and the exit code says
what kind of failure it was (see ``EPILOG``). :func:`main` takes an argv list and
returns the exit code, so it can be called from Python too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from ..__about__ import __version__
from ..errors import (
    BotstateError,
    ConfigError,
    InvalidArgument,
    InvalidKey,
    StorageUnavailable,
    UnsupportedOperation,
)
from ..options import seconds
from ._commands import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Context,
    cmd_adapters,
    cmd_check,
    cmd_delete,
    cmd_get,
    cmd_keys,
    cmd_set,
)
from ._copy import cmd_copy
from ._output import Output, Secrets

__all__ = [
    "EPILOG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

EPILOG = """\
exit codes:
  0  success
  1  the operation failed: key not found (get, delete), keys not copied,
     check read back something else, a storage error
  2  usage or configuration error: bad arguments, bad URL or option, unknown
     adapter (the message says what to pip install), unsupported operation
  3  storage unavailable: connection refused or lost, timeout
  130  interrupted (Ctrl-C)

URLs look like memory://, sqlite:///bot.db, redis://:PASSWORD@host:6379/0,
dynamodb://table?region=eu-west-1; passwords are never printed.
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors never echo a password from argv."""

    secrets: Secrets | None = None

    def error(self, message: str) -> NoReturn:
        if self.secrets is not None:
            message = self.secrets.scrub(message)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


N = TypeVar("N", int, float)


def _number(
    option: str, parse: Callable[[str], N], valid: Callable[[N], bool], wanted: str
) -> Callable[[str], N]:
    """An argparse ``type=`` for ``option``: parse the text, refuse values outside ``wanted``."""

    def convert(text: str) -> N:
        # ArgumentError(None, ...) prints the message as is: it names the option itself.
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentError(
                None, f"{option}: invalid {parse.__name__} value: {text!r}"
            ) from None
        if not valid(value):
            raise argparse.ArgumentError(None, f"{option} must be {wanted}, got {text}")
        return value

    return convert


def _seconds(option: str, *, zero: bool = False) -> Callable[[str], float]:
    """A finite number of seconds, positive (or ``>= 0`` with ``zero``: "no limit")."""

    def convert(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentError(None, f"{option}: invalid float value: {text!r}") from None
        try:
            return seconds(number, option, zero=zero)
        except InvalidArgument as err:
            raise argparse.ArgumentError(None, str(err)) from None

    return convert


def _count(option: str, minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum``."""
    return _number(option, int, lambda v: v >= minimum, f"a whole number >= {minimum}")


def build_parser(secrets: Secrets | None = None) -> argparse.ArgumentParser:
    _Parser.secrets = secrets
    common = _Parser(add_help=False)
    common.add_argument(
        "--timeout",
        type=_seconds("--timeout", zero=True),
        default=30.0,
        metavar="SECONDS",
        help="give up on a storage call after this long, exit 3 (default 30; 0 = never)",
    )
    common.add_argument("--plain", action="store_true", help="plain text even if rich is installed")
    common.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")

    def sub(name: str, help: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name,
            help=help,
            description=description,
            epilog=EPILOG,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    parser: argparse.ArgumentParser = _Parser(
        prog="botstate",
        description="Inspect, edit, check and copy botstate storages.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"botstate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True

    p = sub(
        "adapters", "list installed adapters", "List installed storage adapters and broken plugins."
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(run=cmd_adapters, is_async=False)

    def storage_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("url", metavar="URL", help="storage URL, e.g. sqlite:///bot.db")
        p.add_argument("--namespace", "-n", metavar="NS", help="namespace the keys live in")

    p = sub("keys", "list keys", "List keys, one per line (namespace stripped).")
    storage_args(p)
    p.add_argument("--prefix", "-p", default="", metavar="P", help="only keys starting with P")
    p.set_defaults(run=cmd_keys, is_async=True)

    p = sub(
        "get",
        "show the value of a key",
        "Show a value: JSON pretty-printed; anything else as text or a bytes literal\n"
        "(with a note on stderr). Exit 1 if the key does not exist.",
    )
    storage_args(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("--raw", action="store_true", help="write the stored bytes unchanged to stdout")
    p.add_argument("--ttl", action="store_true", help="also print the remaining TTL on stderr")
    p.set_defaults(run=cmd_get, is_async=True)

    p = sub(
        "set",
        "store a value",
        "Store VALUE under KEY. VALUE is JSON (42, true, '\"text\"', '{\"a\": 1}'),\n"
        "stored as compact UTF-8 JSON like Storage's default codec does; with --raw\n"
        "the text is stored as UTF-8 bytes unchanged. VALUE '-' reads standard input.",
    )
    storage_args(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE")
    p.add_argument("--ttl", type=_seconds("--ttl"), metavar="SECONDS", help="expire after SECONDS")
    p.add_argument("--raw", action="store_true", help="store VALUE as text, not JSON")
    p.set_defaults(run=cmd_set, is_async=True)

    p = sub("delete", "delete a key", "Delete KEY. Exit 1 if it did not exist.")
    storage_args(p)
    p.add_argument("key", metavar="KEY")
    p.set_defaults(run=cmd_delete, is_async=True)

    p = sub(
        "copy",
        "copy every entry to another storage",
        "Copy entries from SRC_URL to DST_URL: values byte for byte (any codec),\n"
        "each with its remaining TTL; keys already expired are skipped. Existing\n"
        "destination keys are overwritten, so a failed copy can simply be re-run.\n"
        "--prefix applies to the stored keys: use 'mybot:' to copy one namespace.\n"
        "Failed keys are listed at the end and make the exit code 1.",
    )
    p.add_argument("src", metavar="SRC_URL")
    p.add_argument("dst", metavar="DST_URL")
    p.add_argument("--prefix", "-p", default="", metavar="P", help="only keys starting with P")
    p.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    p.add_argument(
        "--batch", type=_count("--batch", 1), default=500, metavar="N", help="keys per batch (500)"
    )
    p.add_argument(
        "--max-errors",
        type=_count("--max-errors", 0),
        default=100,
        metavar="N",
        help="stop after N failed keys (default 100; 0 = never stop)",
    )
    p.add_argument(
        "--ignore-ttl",
        action="store_true",
        help="copy without expiry times (for sources that cannot report them)",
    )
    p.set_defaults(run=cmd_copy, is_async=True)

    p = sub(
        "check",
        "check that a storage works",
        "Connect, write a scratch key with a short TTL, read it back, delete it,\n"
        "and report the adapter, its capabilities and latencies. Exit 0 if healthy.",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument(
        "--scratch-ttl",
        type=_seconds("--scratch-ttl"),
        default=60.0,
        metavar="SECONDS",
        help=argparse.SUPPRESS,
    )
    p.set_defaults(run=cmd_check, is_async=True)
    return parser


def exit_code_for(err: BotstateError) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(err, StorageUnavailable):
        return EXIT_UNAVAILABLE
    if isinstance(err, (ConfigError, InvalidKey, UnsupportedOperation)):
        return EXIT_USAGE
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    secrets = Secrets()
    for arg in args_list:
        if "://" in arg:
            secrets.add_url(arg)
    parser = build_parser(secrets)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    out = Output(secrets, use_rich=not args.plain)
    logging.basicConfig(level=logging.WARNING, format="botstate: %(message)s")
    ctx = Context(out, args.timeout or None)
    run: Callable[..., Any] = args.run
    try:
        if args.is_async:
            return int(asyncio.run(run(args, ctx)))
        return int(run(args, ctx))
    except BotstateError as err:
        out.error(str(err) or type(err).__name__)
        return exit_code_for(err)
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.debug:
            out.note(traceback.format_exc())
        out.error(
            f"unexpected {type(err).__name__}: {err} (a bug: rerun with --debug and report it)"
        )
        return EXIT_FAILED
